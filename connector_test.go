package signet_test

import (
	"testing"

	"github.com/signetdev/signet"
)

func TestOverlaps(t *testing.T) {
	c := func(backend, endpoint, bucket, prefix string) *signet.Connector {
		return &signet.Connector{Backend: backend, Endpoint: endpoint, Bucket: bucket, Prefix: prefix}
	}
	for _, tt := range []struct {
		a, b *signet.Connector
		want bool
	}{
		{c("s3", "", "b", "ml/"), c("s3", "", "b", "ml/"), true},
		{c("s3", "", "b", "ml/"), c("s3", "", "b", "ml/x/"), true},
		{c("s3", "", "b", ""), c("s3", "", "b", "x/"), true},
		{c("s3", "", "b", "ml"), c("s3", "", "b", "ml2/"), true},
		{c("s3", "", "b", "ml/"), c("s3", "", "b", "cv/"), false},
		{c("s3", "", "b", "ml/"), c("s3", "", "c", "ml/"), false},
		{c("s3", "", "b", "ml/"), c("gcs", "", "b", "ml/"), false},
		{c("s3", "http://a:9000", "b", ""), c("s3", "http://b:9000", "b", ""), false},
		{c("s3", "http://a:9000", "b", ""), c("s3", "HTTP://A:9000/", "b", ""), true},
		{c("s3", "https://a", "b", ""), c("s3", "https://a:443", "b", ""), true},
		{c("s3", "http://a", "b", ""), c("s3", "http://a:80/", "b", ""), true},
		{c("s3", "https://a", "b", ""), c("s3", "http://a", "b", ""), true},
		{c("s3", "", "b", ""), c("s3", "http://a", "b", ""), true},
		{c("local", "x", "b", ""), c("local", "y", "b", ""), true},
		{c("s3", "", "B", "ML/"), c("S3", "", "b", "ml/"), true},
	} {
		if got := tt.a.Overlaps(tt.b); got != tt.want {
			t.Errorf("overlaps(%+v, %+v) = %v, want %v", *tt.a, *tt.b, got, tt.want)
		}
		if got := tt.b.Overlaps(tt.a); got != tt.want {
			t.Errorf("overlaps(%+v, %+v) = %v, want %v", *tt.b, *tt.a, got, tt.want)
		}
	}
}
