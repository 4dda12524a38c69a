package activities_test

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// isRetryable reports whether Temporal would retry the activity error.
func isRetryable(err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return !appErr.NonRetryable()
	}
	return err != nil
}
