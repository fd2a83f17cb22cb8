package s3blob

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Test hooks: the signer's steps, for the vector tests in package
// s3blob_test.

// PresignInput mirrors presignInput for tests.
type PresignInput struct {
	Method, Host, Path string // Path is the canonical URI, encoded
	Query, Headers     [][2]string
	PayloadHash        string
	Region, Service    string
	AccessKeyID        string
	Secret             string
	SessionToken       string
	TokenAfterSigning  bool
	Time               time.Time
	Expires            int64
}

// Presigned mirrors presigned for tests.
type Presigned struct {
	Query, CanonicalRequest, StringToSign, Signature string
}

// Signer wraps the signer and its key cache.
type Signer struct{ s signer }

// Presign runs the signer with a fresh key cache.
func Presign(in PresignInput) Presigned { return new(Signer).Presign(in) }

// Presign runs the signer with s's key cache.
func (s *Signer) Presign(in PresignInput) Presigned {
	p := presignInput{
		method: in.Method, host: in.Host, path: []byte(in.Path), payloadHash: in.PayloadHash,
		region: in.Region, service: in.Service, accessKeyID: in.AccessKeyID,
		secret: in.Secret, sessionToken: in.SessionToken, tokenAfterSigning: in.TokenAfterSigning,
		time: in.Time, expires: in.Expires,
	}
	for _, q := range in.Query {
		p.query = append(p.query, param{q[0], q[1]})
	}
	for _, h := range in.Headers {
		p.headers = append(p.headers, param{h[0], h[1]})
	}
	var out presigned
	q := s.s.appendPresigned(nil, &p, &out)
	return Presigned{string(q), out.canonicalRequest, out.stringToSign, out.signature}
}

// EscapePath encodes an object path the S3 way.
func EscapePath(s string) string { return string(appendPathEscaped(nil, s)) }

// SetListPageSize makes ListParts ask for n parts a page.
func SetListPageSize(b *Backend, n int32) { b.listPageSize = n }

// AssumeRoleForTest assumes cfg.RoleARN at cfg.Endpoint with the session
// policy Open would use, and returns the session's credentials.
func AssumeRoleForTest(ctx context.Context, cfg Config, id, secret string) (aws.Credentials, error) {
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	client := sts.New(sts.Options{
		Region:       region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
	out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(cfg.RoleARN),
		RoleSessionName: aws.String("signet-test"),
		Policy:          aws.String(SessionPolicy(region, cfg.Bucket, cfg.Prefix, cfg.KMSKeyID)),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		return aws.Credentials{}, err
	}
	c := out.Credentials
	return aws.Credentials{
		AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), CanExpire: true, Expires: aws.ToTime(c.Expiration),
	}, nil
}
