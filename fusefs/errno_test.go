package fusefs

import (
	"reflect"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestPathFields: a log line about a path carries topic, partition and segment as their own fields,
// as far as the path names them.
func TestPathFields(t *testing.T) {
	for path, want := range map[string]logrus.Fields{
		"/":                                  {},
		"/.stats":                            {},
		"/orders":                            {"topic": "orders"},
		"/orders/3":                          {"topic": "orders", "partition": 3},
		"/orders/x":                          {"topic": "orders"},
		"/orders/3/current":                  {"topic": "orders", "partition": 3},
		"/orders/3/.stream":                  {"topic": "orders", "partition": 3},
		"/orders/3/00000000000000001024.log": {"topic": "orders", "partition": 3, "segment": int64(1024)},
	} {
		want["op"], want["path"] = "read", path
		if got := pathFields("read", path); !reflect.DeepEqual(got, want) {
			t.Errorf("pathFields(%q) = %v; want %v", path, got, want)
		}
	}
}
