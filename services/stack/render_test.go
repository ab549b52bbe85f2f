package stack

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// deployDir is the repository's deploy/ (this package is services/stack).
func deployDir(t *testing.T) string {
	d, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	require.NoError(t, err)
	return d
}

func testStack(t *testing.T, groups int) *Stack {
	o := DefaultOptions()
	o.Dir, o.BinDir, o.DeployDir, o.Groups = t.TempDir(), "/nonexistent/bin", deployDir(t), groups
	s, err := New(o)
	require.NoError(t, err)
	s.secrets = newSecrets()
	return s
}

// properties parses a generated key=value file.
func properties(t *testing.T, text string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		require.NotContains(t, kv, k, "key %s twice", k)
		kv[k] = v
	}
	return kv
}

func TestBrokerConfigs(t *testing.T) {
	s := testStack(t, 2)
	ports := map[string]string{}
	claim := func(port, who string) {
		require.NotContains(t, ports, port, "%s and %s share port %s", ports[port], who, port)
		ports[port] = who
	}
	peersOf := map[string]string{}
	for _, m := range s.brokerMembers() {
		kv := properties(t, s.brokerConf(m))
		require.Equal(t, "DefaultCluster", kv["brokerClusterName"])
		require.Equal(t, m.name[:len("broker-a")], kv["brokerName"])
		require.Equal(t, kv["brokerName"], kv["dLegerGroup"])
		require.Equal(t, m.name[len("broker-a-"):], kv["dLegerSelfId"])
		require.Equal(t, "127.0.0.1:20001;127.0.0.1:20002", kv["namesrvAddr"])
		require.Equal(t, "ASYNC_FLUSH", kv["flushDiskType"])
		require.Equal(t, "true", kv["enableDLegerCommitLog"])
		require.Equal(t, "true", kv["autoCreateTopicEnable"])
		require.Equal(t, "8", kv["defaultTopicQueueNums"])
		require.Equal(t, "100", kv["dLegerHeartbeatIntervalMs"])
		require.Equal(t, "1000", kv["dLegerElectionTimeoutMs"])
		require.Equal(t, strconv.Itoa(128<<20), kv["mappedFileSizeCommitLog"])
		require.Equal(t, filepath.Join(s.opts.Dir, m.name), kv["storePathRootDir"])
		claim(kv["listenPort"], m.name)
		// Every member of a group lists the same peers, itself among them.
		if prev, ok := peersOf[kv["brokerName"]]; ok {
			require.Equal(t, prev, kv["dLegerPeers"])
		}
		peersOf[kv["brokerName"]] = kv["dLegerPeers"]
		require.Contains(t, kv["dLegerPeers"], kv["dLegerSelfId"]+"-127.0.0.1:")
	}
	require.Len(t, peersOf, 2)
	for group, peers := range peersOf {
		members := strings.Split(peers, ";")
		require.Len(t, members, 3, group)
		for _, p := range members {
			_, addr, _ := strings.Cut(p, "-")
			_, port, _ := strings.Cut(addr, ":")
			claim(port, group+" raft "+p)
		}
	}
	require.Equal(t, "broker-a-n0", ports["20911"])
	require.Equal(t, "broker-b-n2", ports["20961"])
}

func TestRenderGateway(t *testing.T) {
	s := testStack(t, 1)
	s.secrets.AdminToken = `adm_with"quote\and` // quoting must hold even for odd tokens
	d := s.gatewayData()
	conf, err := RenderGateway(filepath.Join(deployDir(t), GatewayTemplate), d)
	require.NoError(t, err)
	text := string(conf)
	ndk := strings.Index(text, "load_module "+nginxModulesDir+"/ndk_http_module.so;")
	lua := strings.Index(text, "load_module "+nginxModulesDir+"/ngx_http_lua_module.so;")
	require.True(t, ndk >= 0 && lua > ndk, "ndk must be loaded before the lua module")
	require.Contains(t, text, "listen 127.0.0.1:20080")
	require.Contains(t, text, "token_secret = \""+s.secrets.TokenSecret+"\"")
	require.Contains(t, text, `admin_token = "adm_with\"quote\\and"`)
	require.Contains(t, text, "access_by_lua_file "+filepath.Join(s.opts.Dir, "nginx", "lua", "auth.lua")+";")
	for name, port := range map[string]int{"order": 20101, "inventory": 20102, "points": 20103, "marketing": 20104, "push": 20105, "warehouse": 20106, "provider": 20090} {
		require.Contains(t, text, "upstream "+name+" {\n        server 127.0.0.1:"+strconv.Itoa(port)+" max_fails=0;", name)
	}
	for _, path := range []string{"error_log " + s.opts.Dir + "/nginx/logs/error.log", "access_log " + s.opts.Dir + "/nginx/logs/access.log",
		"client_body_temp_path " + s.opts.Dir + "/nginx/temp/body", "pid " + s.opts.Dir + "/nginx/nginx.pid"} {
		require.Contains(t, text, path)
	}
	require.NotContains(t, text, "<no value>")

	// A template naming a service the stack does not have fails to render.
	bad := filepath.Join(t.TempDir(), "bad.tmpl")
	require.NoError(t, os.WriteFile(bad, []byte(`proxy_pass http://{{upstream "billing"}};`), 0o644))
	_, err = RenderGateway(bad, d)
	require.ErrorContains(t, err, `no upstream "billing"`)
}

// TestGatewayConfigPassesNginxCheck renders the configuration as the
// stack does and has nginx -t check it.
func TestGatewayConfigPassesNginxCheck(t *testing.T) {
	if _, err := os.Stat(nginxPath); err != nil {
		t.Skip("requires nginx (Debian's nginx and libnginx-mod-http-lua)")
	}
	if _, err := os.Stat(luaModulePath); err != nil {
		t.Skip("requires libnginx-mod-http-lua")
	}
	s := testStack(t, 2)
	require.NoError(t, os.MkdirAll(filepath.Join(s.opts.Dir, "conf"), 0o750))
	require.NoError(t, prepareNginx(t.Context(), s))
	st, err := os.Stat(filepath.Join(s.opts.Dir, "nginx", "nginx.conf"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "nginx.conf holds the secrets")
	_, err = os.Stat(filepath.Join(s.opts.Dir, "nginx", "lua", "auth.lua"))
	require.NoError(t, err)

	// A broken configuration is reported with nginx's own message.
	require.NoError(t, os.WriteFile(filepath.Join(s.opts.Dir, "nginx", "nginx.conf"), []byte("events {}\nhttp { bogus_directive on; }\n"), 0o600))
	var out bytes.Buffer
	cmd := exec.Command(nginxPath, append(nginxArgs(s), "-t")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.Error(t, cmd.Run())
	require.Contains(t, out.String(), "bogus_directive")
}

func TestSecretsAreMadeOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.json")
	first, err := loadOrCreateSecrets(path)
	require.NoError(t, err)
	require.NoError(t, first.validate())
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	var raw map[string]string
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	require.Regexp(t, `^[0-9a-f]{64}$`, raw["token_secret"])
	require.Regexp(t, `^[0-9a-f]{64}$`, raw["provider_secret"])
	require.NotEmpty(t, raw["admin_token"])

	again, err := loadOrCreateSecrets(path)
	require.NoError(t, err)
	require.Equal(t, first, again)

	// An older file without the MySQL password keeps its secrets.
	require.NoError(t, os.WriteFile(path, []byte(`{"token_secret":"`+first.TokenSecret+`","admin_token":"`+first.AdminToken+`","provider_secret":"`+first.ProviderSecret+`"}`), 0o600))
	upgraded, err := loadOrCreateSecrets(path)
	require.NoError(t, err)
	require.Equal(t, first.TokenSecret, upgraded.TokenSecret)
	require.Equal(t, first.AdminToken, upgraded.AdminToken)
	require.NotEmpty(t, upgraded.MySQLRootPassword)

	require.NoError(t, os.WriteFile(path, []byte(`{"token_secret":"short","admin_token":"`+first.AdminToken+`"}`), 0o600))
	_, err = loadOrCreateSecrets(path)
	require.ErrorContains(t, err, "token_secret: want 64 lowercase hex characters")
}

func TestLuaString(t *testing.T) {
	for in, want := range map[string]string{
		"abc":         `"abc"`,
		`a"b`:         `"a\"b"`,
		`a\b`:         `"a\\b"`,
		"new\nline":   `"new\010line"`,
		"]]--[[ x":    `"]]--[[ x"`,
		"caf\xc3\xa9": `"caf\195\169"`,
	} {
		require.Equal(t, want, luaString(in), "%q", in)
	}
}

func TestServiceArgs(t *testing.T) {
	s := testStack(t, 2)
	s.secrets.MySQLRootPassword = "pw"
	args := map[string][]string{}
	for _, c := range componentTable(2) {
		if c.kind == kindService {
			args[c.name] = c.args(s)
		}
	}
	dsn := func(db string) string {
		return "root:pw@tcp(127.0.0.1:20306)/qianlang_" + db + "?parseTime=true&loc=UTC&charset=utf8mb4"
	}
	secrets := filepath.Join(s.opts.Dir, "secrets.json")
	ns := "127.0.0.1:20001;127.0.0.1:20002"
	require.Equal(t, []string{"--listen", "127.0.0.1:20090", "--dsn", dsn("provider"), "--secrets", secrets}, args["provider"])
	require.Equal(t, []string{"--listen", "127.0.0.1:20101", "--dsn", dsn("order"), "--secrets", secrets, "--namesrv", ns,
		"--provider", "http://127.0.0.1:20090", "--public-url", "http://127.0.0.1:20101", "--order-timeout", "30m0s", "--seckill-order-rate", "500"}, args["order"])
	require.Equal(t, []string{"--listen", "127.0.0.1:20102", "--dsn", dsn("inventory"), "--secrets", secrets, "--namesrv", ns}, args["inventory"])
	require.Equal(t, []string{"--listen", "127.0.0.1:20105", "--dsn", dsn("push"), "--secrets", secrets, "--namesrv", ns,
		"--provider", "http://127.0.0.1:20090"}, args["push"])
	require.Equal(t, []string{"--listen", "127.0.0.1:20106", "--dsn", dsn("warehouse"), "--secrets", secrets, "--namesrv", ns,
		"--provider", "http://127.0.0.1:20090", "--public-url", "http://127.0.0.1:20106", "--ship-after", "10s"}, args["warehouse"])
	require.Len(t, args, 7)
}
