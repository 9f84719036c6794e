// Package promcheck holds what tests of a metrics exposition share: promtool's lint and a parser.
package promcheck

import (
	"bytes"
	"os/exec"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Check runs `promtool check metrics` (Debian's prometheus package, which scripts/install-deps.sh
// installs) on an exposition: the text format and Prometheus's naming conventions (units, _total on
// counters, help texts).
func Check(t testing.TB, what string, exposition []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found; scripts/install-deps.sh installs it (Debian package prometheus)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on %s: %v\n%s", what, err, out)
	}
}

// Families parses an exposition in the text format.
func Families(t testing.TB, exposition []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}
