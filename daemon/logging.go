package daemon

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

// NewLogger builds the logger from --log-level, --log-format and --log-file (empty: w). The returned
// function closes the file, if one was opened.
func NewLogger(level, format, file string, w io.Writer) (*logrus.Logger, func() error, error) {
	logger := logrus.New()
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	logger.SetLevel(lvl)
	switch format {
	case "text":
		logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		logger.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, nil, fmt.Errorf("--log-format: %q is not text or json", format)
	}
	logger.SetOutput(w)
	closeFn := func() error { return nil }
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		logger.SetOutput(f)
		closeFn = f.Close
	}
	return logger, closeFn, nil
}
