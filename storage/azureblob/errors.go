package azureblob

import (
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// storeError translates an error of the azblob SDK into a *signet.Error,
// once, by the store's error code (azcore.ResponseError.ErrorCode) or HTTP
// status, never by message text. msg is the user-safe message; err stays
// in Err, which is only logged (SDK errors carry the request URL with any
// SAS signature redacted, and never the account key).
//
//	BlobNotFound, ContainerNotFound, ResourceNotFound, 404   NotFound
//	AuthenticationFailed, Authorization*, 401, 403           PermissionDenied
//	InvalidBlockList, InvalidBlobOrBlock, InvalidBlockID,
//	BlockCountExceedsLimit, RequestBodyTooLarge, other 400   Invalid
//	ConditionNotMet, lease conflicts, 409, 412               Conflict
//	ServerBusy, InternalError, OperationTimedOut, 429, 5xx,
//	network errors, timeouts                                 Unavailable
//	anything else                                            Internal
func storeError(op, msg string, err error) error {
	return signet.E(op, storeCode(err), msg, err)
}

func storeCode(err error) signet.Code {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch bloberror.Code(re.ErrorCode) {
		case bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound:
			return signet.NotFound
		case bloberror.AuthenticationFailed, bloberror.AuthorizationFailure,
			bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationProtocolMismatch,
			bloberror.AuthorizationResourceTypeMismatch, bloberror.AuthorizationServiceMismatch,
			bloberror.AuthorizationSourceIPMismatch, bloberror.InsufficientAccountPermissions,
			bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation,
			bloberror.AccountIsDisabled, bloberror.ContainerDisabled:
			return signet.PermissionDenied
		case bloberror.InvalidBlockList, bloberror.InvalidBlobOrBlock, bloberror.InvalidBlockID,
			bloberror.BlockCountExceedsLimit, bloberror.BlockListTooLong, bloberror.RequestBodyTooLarge,
			bloberror.InvalidHeaderValue, bloberror.InvalidInput, bloberror.InvalidQueryParameterValue,
			bloberror.InvalidResourceName, bloberror.OutOfRangeInput, bloberror.InvalidBlobType:
			return signet.Invalid
		case bloberror.ConditionNotMet, bloberror.LeaseIDMissing, bloberror.LeaseIDMismatchWithBlobOperation,
			bloberror.LeaseNotPresentWithBlobOperation, bloberror.BlobImmutableDueToPolicy,
			bloberror.ContainerBeingDeleted, bloberror.BlobArchived, bloberror.BlobBeingRehydrated:
			return signet.Conflict
		case bloberror.ServerBusy, bloberror.InternalError, bloberror.OperationTimedOut:
			return signet.Unavailable
		}
		if c := driver.StatusCode(re.StatusCode); c != "" {
			return c
		}
	}
	// No answer: the store could not be reached, or the answer was cut
	// short.
	if driver.NoAnswer(err) {
		return signet.Unavailable
	}
	return signet.Internal
}
