package doctor

import (
	"bytes"
	"encoding/json"
	"strconv"

	workv1 "open-cluster-management.io/api/work/v1"
)

// FormatValue renders a feedback value for display and comparison: strings
// as they are, integers and booleans in Go syntax, JSON compacted so that
// formatting differences do not count as a mismatch.
func FormatValue(v workv1.FieldValue) string {
	switch {
	case v.String != nil:
		return *v.String
	case v.Integer != nil:
		return strconv.FormatInt(*v.Integer, 10)
	case v.Boolean != nil:
		return strconv.FormatBool(*v.Boolean)
	case v.JsonRaw != nil:
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(*v.JsonRaw)) == nil {
			return buf.String()
		}
		return *v.JsonRaw
	}
	return None
}
