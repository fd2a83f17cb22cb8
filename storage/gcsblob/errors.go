package gcsblob

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// storeErr is an XML API error answer: its status and <Code>. It holds
// neither the request URL nor the answer's message.
type storeErr struct {
	Status int
	Code   string
	Date   string // the answer's Date header, for doctor's clock check
}

func (e *storeErr) Error() string {
	return fmt.Sprintf("gcs answered %d %s", e.Status, e.Code)
}

// transportErr is a request that got no complete answer.
type transportErr struct{ cause error }

func (e *transportErr) Error() string { return "gcs request failed: " + e.cause.Error() }
func (e *transportErr) Unwrap() error { return e.cause }

// unwrapURLError drops the *url.Error around err, whose text has the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func readStoreErr(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := parseStoreErr(resp.StatusCode, data)
	if e == nil {
		e = &storeErr{Status: resp.StatusCode}
	}
	e.Date = resp.Header.Get("Date")
	return e
}

// parseStoreErr returns the error in an XML <Error> document, or nil when
// data is not one and status is below 300.
func parseStoreErr(status int, data []byte) *storeErr {
	var doc struct {
		XMLName xml.Name
		Code    string `xml:"Code"`
	}
	if xml.Unmarshal(data, &doc) == nil && doc.XMLName.Local == "Error" {
		if status < 300 {
			status = http.StatusInternalServerError
		}
		return &storeErr{Status: status, Code: doc.Code}
	}
	if status >= 300 {
		return &storeErr{Status: status}
	}
	return nil
}

func isStatus(err error, statuses ...int) bool {
	var se *storeErr
	if !errors.As(err, &se) {
		return false
	}
	for _, s := range statuses {
		if se.Status == s {
			return true
		}
	}
	return false
}

// storeError translates a control-plane error into a *signet.Error, once,
// by the XML API's error code or HTTP status, never by message text. msg
// is the user-safe message; err stays in Err, which is only logged.
//
//	NoSuchUpload, NoSuchKey, NoSuchBucket, 404           NotFound
//	AccessDenied, SignatureDoesNotMatch, 401, 403         PermissionDenied
//	InvalidPart, InvalidPartOrder, EntityTooSmall,
//	InvalidArgument, MalformedXML, other 4xx              Invalid
//	PreconditionFailed, 409, 412                          Conflict
//	InternalError, ServiceUnavailable, SlowDown, 429,
//	5xx, network errors, timeouts                         Unavailable
//	anything else                                         Internal
func storeError(op, msg string, err error) error {
	var e *signet.Error
	if errors.As(err, &e) {
		return err
	}
	return signet.E(op, storeCode(err), msg, err)
}

func storeCode(err error) signet.Code {
	var se *storeErr
	if errors.As(err, &se) {
		switch se.Code {
		case "NoSuchUpload", "NoSuchKey", "NoSuchBucket":
			return signet.NotFound
		case "AccessDenied", "SignatureDoesNotMatch", "InvalidSecurity", "ExpiredToken",
			"UserProjectAccountProblem", "AccountProblem":
			return signet.PermissionDenied
		case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge",
			"InvalidArgument", "MalformedXML", "InvalidRequest":
			return signet.Invalid
		case "PreconditionFailed", "ConditionNotMet":
			return signet.Conflict
		case "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout":
			return signet.Unavailable
		}
		if c := driver.StatusCode(se.Status); c != "" {
			return c
		}
	}
	var te *transportErr
	if errors.As(err, &te) || driver.NoAnswer(err) {
		return signet.Unavailable
	}
	return signet.Internal
}
