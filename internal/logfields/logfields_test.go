package logfields

import (
	"bytes"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestErrNamesTheErrno(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	Err(logrus.NewEntry(l), fmt.Errorf("append to t/0: %w", syscall.ENOSPC)).Warn("x")
	Err(logrus.NewEntry(l), fmt.Errorf("plain")).Warn("y")
	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if first["errno"] != "ENOSPC" || first["error"] != "append to t/0: no space left on device" {
		t.Errorf("with an errno: %v", first)
	}
	if _, ok := second["errno"]; ok || second["error"] != "plain" {
		t.Errorf("without an errno: %v", second)
	}
	if Errno(syscall.Errno(4000)) != "errno 4000" {
		t.Errorf("unnamed errno: %q", Errno(syscall.Errno(4000)))
	}
}
