package bus_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/bus"
)

func TestParseNameServers(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"127.0.0.1:9876", []string{"127.0.0.1:9876"}, false},
		{"127.0.0.1:1;127.0.0.1:2", []string{"127.0.0.1:1", "127.0.0.1:2"}, false},
		{"", nil, true},
		{"nohost", nil, true},
		{"h:0", nil, true},
		{"h:x", nil, true},
	} {
		got, err := bus.ParseNameServers(tc.in)
		if tc.wantErr {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}
