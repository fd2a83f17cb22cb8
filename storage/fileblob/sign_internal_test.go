package fileblob

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
)

// valuesQuery is the query of c built with url.Values, as query was
// before it built the string itself: the reference query must match.
func valuesQuery(c *claims, sig []byte) string {
	q := url.Values{}
	q.Set(paramVersion, urlVersion)
	q.Set(paramKeyID, c.KeyID)
	q.Set(paramMethod, c.Method)
	q.Set(paramExpires, strconv.FormatInt(c.Expires, 10))
	if c.Size >= 0 {
		q.Set(paramSize, strconv.FormatInt(c.Size, 10))
	}
	if c.HasContentType {
		q.Set(paramType, c.ContentType)
	}
	if c.SHA256 != nil {
		q.Set(paramSHA256, hex.EncodeToString(c.SHA256))
	}
	if c.ClientPrefix.IsValid() {
		q.Set(paramIP, c.ClientPrefix.String())
	}
	if c.UploadID != "" {
		q.Set(paramUpload, c.UploadID)
		q.Set(paramPart, strconv.Itoa(c.PartNumber))
	}
	if c.GrantID != "" {
		q.Set(paramGrant, c.GrantID)
	}
	q.Set(paramSig, sigEncoding.EncodeToString(sig))
	return q.Encode()
}

// TestQueryEncoding: query writes every combination of claims, awkward
// content types included, exactly as url.Values.Encode does, and
// parseQuery reads back what it wrote.
func TestQueryEncoding(t *testing.T) {
	types := []string{"", "application/octet-stream", "text/plain; charset=utf-8", "a+b/c&d=e", "ü 100%", "~._-"}
	prefixes := []netip.Prefix{{}, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for mask := range 1 << 6 {
		for _, ct := range types {
			for _, p := range prefixes {
				c := &claims{KeyID: "k1", Method: "PUT", Expires: 1_800_000_000 + int64(mask), Size: -1, ClientPrefix: p}
				if mask&1 != 0 {
					c.Size = rng.Int64N(5 << 30)
				}
				if mask&2 != 0 {
					c.HasContentType, c.ContentType = true, ct
				}
				if mask&4 != 0 {
					c.SHA256 = bytes.Repeat([]byte{byte(mask)}, 32)
				}
				if mask&8 != 0 {
					c.UploadID, c.PartNumber = fmt.Sprintf("%032x", mask), 1+mask
				}
				if mask&16 != 0 {
					c.GrantID = "0123456789abcdefghijklmnopq"
				}
				if mask&32 != 0 {
					c.Method = "GET"
				}
				sig := make([]byte, 32)
				for i := range sig {
					sig[i] = byte(rng.Uint32())
				}
				got, want := c.query(sig), valuesQuery(c, sig)
				if got != want {
					t.Fatalf("query of %+v:\n got %s\nwant %s", c, got, want)
				}
				back, bsig, reason := parseQuery(got)
				if reason != "" || !bytes.Equal(bsig, sig) || back.ContentType != c.ContentType || back.Size != c.Size ||
					back.GrantID != c.GrantID || back.UploadID != c.UploadID || back.ClientPrefix != c.ClientPrefix {
					t.Fatalf("parseQuery(%s) = %+v, %q; want the claims back", got, back, reason)
				}
				n++
			}
		}
	}
	t.Logf("%d queries match url.Values.Encode and parse back", n)
}

// BenchmarkQuery builds a download URL's query (grant id, no bindings)
// with query and, in the same run, with url.Values as query did before;
// it reports query's time as a ratio of the reference's (x-values).
func BenchmarkQuery(b *testing.B) {
	c := &claims{KeyID: "k1", Method: "GET", Expires: 1_800_000_000, Size: -1, GrantID: "0123456789abcdefghijklmnop"}
	sig := bytes.Repeat([]byte{7}, 32)
	var ref float64
	b.Run("values", func(b *testing.B) {
		for b.Loop() {
			valuesQuery(c, sig)
		}
		ref = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("query", func(b *testing.B) {
		for b.Loop() {
			c.query(sig)
		}
		if ref > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ref, "x-values")
		}
	})
}
