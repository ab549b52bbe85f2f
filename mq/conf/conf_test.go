package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type sample struct {
	Name    string        `conf:"brokerName"`
	Port    int           `conf:"listenPort"`
	Auto    bool          `conf:"autoCreateTopicEnable"`
	Ratio   float64       `conf:"ratio"`
	Timeout time.Duration `conf:"timeoutMillis,ms"`
	Keep    time.Duration `conf:"fileReservedTime,h"`
	Size    int64         `conf:"size"`
}

func TestParseSyntax(t *testing.T) {
	src := "# comment\n! also\n\nbrokerName = broker-a\nlistenPort:10911\nautoCreateTopicEnable true\n" +
		"ratio=0.75   \nlong=first \\\n   second\nesc=a\\tb\\u0041\\\\\n"
	p, err := Parse("b.conf", strings.NewReader(src))
	require.NoError(t, err)
	want := map[string]string{"brokerName": "broker-a", "listenPort": "10911", "autoCreateTopicEnable": "true",
		"ratio": "0.75", "long": "first second", "esc": "a\tbA\\"}
	for k, v := range want {
		got, ok := p.Get(k)
		require.True(t, ok, k)
		require.Equal(t, v, got, k)
	}
	require.Equal(t, 4, p.Entries[0].Line)
}

func TestBind(t *testing.T) {
	p, err := Parse("b.conf", strings.NewReader("brokerName=a\nlistenPort=10911\nautoCreateTopicEnable=false\nratio=0.5\ntimeoutMillis=1500\nfileReservedTime=48\nsize=1073741824\n"))
	require.NoError(t, err)
	var s sample
	require.NoError(t, Bind(p, &s))
	require.Equal(t, sample{Name: "a", Port: 10911, Ratio: 0.5, Timeout: 1500 * time.Millisecond, Keep: 48 * time.Hour, Size: 1 << 30}, s)
}

func TestBindErrorsNameKeyValueAndLine(t *testing.T) {
	tests := []struct{ src, want string }{
		{"brokerNme=a\n", `b.conf:1: unknown key "brokerNme" (value "a")`},
		{"\nlistenPort=abc\n", `b.conf:2: listenPort="abc": want an integer`},
		{"autoCreateTopicEnable=yes please\n", `autoCreateTopicEnable="yes please": want true or false`},
		{"timeoutMillis=1s\n", `timeoutMillis="1s": want an integer number of milliseconds`},
		{"ratio=x\n", `ratio="x": want a number`},
	}
	for _, tt := range tests {
		p, err := Parse("b.conf", strings.NewReader(tt.src))
		require.NoError(t, err)
		var s sample
		require.ErrorContains(t, Bind(p, &s), tt.want)
	}
}

func TestParseBadEscape(t *testing.T) {
	_, err := Parse("b.conf", strings.NewReader("k=\\u12\n"))
	require.ErrorContains(t, err, "b.conf:1")
}
