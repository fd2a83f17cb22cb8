package s3blob

import (
	"errors"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// storeError translates an error of the AWS SDK into a *signet.Error, once,
// by the store's error code (smithy.APIError.ErrorCode) or HTTP status,
// never by message text. msg is the user-safe message; err stays in Err,
// which is only logged (SDK errors carry request ids, never credentials or
// URLs).
//
//	NoSuchUpload, NoSuchKey, NoSuchBucket, 404   NotFound
//	AccessDenied and other credential refusals,
//	403                                          PermissionDenied
//	InvalidPart, InvalidPartOrder, EntityTooSmall,
//	EntityTooLarge, InvalidRequest, 400          Invalid
//	PreconditionFailed, 412, 409                 Conflict
//	SlowDown, 503, other 5xx, network errors,
//	timeouts, credential retrieval failures      Unavailable
//	anything else                                Internal
func storeError(op, msg string, err error) error {
	return signet.E(op, storeCode(err), msg, err)
}

func storeCode(err error) signet.Code {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchUpload", "NoSuchKey", "NoSuchBucket", "NotFound":
			return signet.NotFound
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
			"InvalidToken", "TokenRefreshRequired", "AccountProblem", "AllAccessDisabled",
			"InvalidClientTokenId", "KMS.AccessDeniedException", "Forbidden":
			return signet.PermissionDenied
		case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge",
			"InvalidRequest", "InvalidArgument", "MalformedXML", "KeyTooLongError":
			return signet.Invalid
		case "PreconditionFailed", "OperationAborted", "ConditionalRequestConflict":
			return signet.Conflict
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
			"RequestTimeTooSkewed", "XMinioServerNotInitialized":
			return signet.Unavailable
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if c := driver.StatusCode(re.HTTPStatusCode()); c != "" {
			return c
		}
	}
	// No answer: the store or STS could not be reached, or the answer was
	// cut short.
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) || driver.NoAnswer(err) {
		return signet.Unavailable
	}
	return signet.Internal
}
