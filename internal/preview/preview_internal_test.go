package preview

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/activities"
)

// Every activity the worker registers (the methods of activities.Activities)
// has its preview: a journey that calls one the preview lacks would fail to
// preview. An activity added to the worker must be added here, as a dry run
// if it writes or sends.
func TestEveryActivityHasAPreview(t *testing.T) {
	t.Parallel()
	have := (&player{}).activities(time.Now)
	typ := reflect.TypeFor[*activities.Activities]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		_, ok := have[name]
		require.True(t, ok, "activity %s has no preview", name)
		want := typ.Method(i).Type
		got := reflect.TypeOf(have[name])
		require.Equal(t, want.NumIn()-1, got.NumIn(), "activity %s: arguments", name)
		for j := 1; j < want.NumIn(); j++ {
			require.Equal(t, want.In(j), got.In(j-1), "activity %s: argument %d", name, j)
		}
		require.Equal(t, want.NumOut(), got.NumOut(), "activity %s: results", name)
		for j := range want.NumOut() {
			require.Equal(t, want.Out(j), got.Out(j), "activity %s: result %d", name, j)
		}
	}
	require.Len(t, have, typ.NumMethod(), "a preview activity the worker does not have")
}
