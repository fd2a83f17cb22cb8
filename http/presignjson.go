package http

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The presign answer is the hot path's one large JSON value, and
// encoding/json's reflection over it was about a twentieth of a presign's
// CPU. appendJSON writes the same bytes directly: writePresign's output is
// byte for byte what writeJSON's json.Encoder writes (TestPresignJSON
// compares the two over many answers), so clients cannot tell.

// writePresign writes resp with status 200, as writeJSON would.
func writePresign(w http.ResponseWriter, resp *PresignResponse) {
	b := resp.appendJSON(make([]byte, 0, 256+768*len(resp.Objects)))
	writeJSONHeader(w, http.StatusOK)
	w.Write(b)
}

// appendJSON appends r as json.Encoder.Encode writes it: fields in
// declaration order, empty ones left out as their tags say, strings
// escaped for HTML, map keys sorted, and a newline at the end.
func (r *PresignResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"objects":`...)
	if r.Objects == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Objects {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Objects[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

func (o *ObjectResult) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, o.Key)
	if o.Method != "" {
		b = append(b, `,"method":`...)
		b = appendJSONString(b, o.Method)
	}
	if o.URL != "" {
		b = append(b, `,"url":`...)
		b = appendJSONString(b, o.URL)
	}
	if o.Headers != nil {
		b = append(b, `,"headers":`...)
		b = appendJSONMap(b, o.Headers)
	}
	if o.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = appendJSONTime(b, *o.ExpiresAt)
	}
	if o.Error != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendJSONString(b, o.Error.Code)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, o.Error.Message)
		b = append(b, '}')
	}
	if o.Size != nil {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, *o.Size, 10)
	}
	if o.ETag != "" {
		b = append(b, `,"etag":`...)
		b = appendJSONString(b, o.ETag)
	}
	if o.SHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = appendJSONString(b, o.SHA256)
	}
	return append(b, '}')
}

// appendJSONMap appends m with its keys in order, as encoding/json does.
func appendJSONMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time.MarshalJSON does, through
// encoding/json itself for a year outside 0–9999, which it refuses.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		enc, err := json.Marshal(t)
		if err != nil {
			return append(b, "null"...) // not reached: expiries are hours away
		}
		return append(b, enc...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString appends s quoted as encoding/json quotes it by default.
// Printable ASCII is copied and '&' (every URL's query has some) written
// as \u0026; a string with anything else to escape (quotes, backslashes,
// control characters, '<', '>', any byte past ASCII) goes through
// encoding/json, whose rules for those are the ones to match.
func appendJSONString(b []byte, s string) []byte {
	mark := len(b)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			b = append(b, s[start:i]...)
			b = append(b, `\u0026`...)
			start = i + 1
		case c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>':
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b[:mark], enc...)
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
