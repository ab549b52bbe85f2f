package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// GatewayTemplate is the gateway's nginx.conf template inside the deploy
// directory; GatewayLuaDir holds its Lua, copied next to the rendered
// configuration.
const (
	GatewayTemplate = "nginx/gateway.conf.tmpl"
	GatewayLuaDir   = "nginx/lua"
)

// GatewayData is what gateway.conf.tmpl renders from.
type GatewayData struct {
	Prefix     string // the nginx prefix: DIR/nginx
	Listen     string // 127.0.0.1:<base+80>
	User       string // "root" when the master runs as root (else workers would be nobody)
	Workers    int
	ModulesDir string
	LuaDir     string // DIR/nginx/lua
	LuaPath    string // lua_package_path
	// Upstreams maps a service name to its address. Every service of the
	// platform is listed, started or not: a stopped one answers 503.
	Upstreams map[string]string
	// TokenSecret and AdminToken reach auth.lua through init_by_lua_block;
	// render them with the lua function (a quoted Lua string).
	TokenSecret string
	AdminToken  string
}

// gatewayData is the stack's GatewayData.
func (s *Stack) gatewayData() GatewayData {
	prefix := filepath.Join(s.opts.Dir, "nginx")
	d := GatewayData{
		Prefix:      prefix,
		Listen:      s.addr(offGateway),
		Workers:     2,
		ModulesDir:  nginxModulesDir,
		LuaDir:      filepath.Join(prefix, "lua"),
		Upstreams:   map[string]string{},
		TokenSecret: s.secrets.TokenSecret,
		AdminToken:  s.secrets.AdminToken,
	}
	d.LuaPath = d.LuaDir + "/?.lua;" + debianLuaPackage + ";;"
	if os.Geteuid() == 0 {
		d.User = "root"
	}
	for _, c := range componentTable(s.opts.Groups) {
		if c.kind == kindService {
			d.Upstreams[c.name] = s.addr(c.ports[0])
		}
	}
	return d
}

// RenderGateway renders the template at tmplPath with d.
func RenderGateway(tmplPath string, d GatewayData) ([]byte, error) {
	src, err := os.ReadFile(tmplPath)
	if err != nil {
		return nil, err
	}
	t, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").Funcs(template.FuncMap{
		"lua": luaString,
		"upstream": func(name string) (string, error) {
			if _, ok := d.Upstreams[name]; !ok {
				return "", fmt.Errorf("no upstream %q", name)
			}
			return name, nil
		},
	}).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tmplPath, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("%s: %w", tmplPath, err)
	}
	return b.Bytes(), nil
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// prepareNginx renders nginx.conf (mode 0600: it holds the secrets),
// copies the Lua and checks the result with nginx -t.
func prepareNginx(ctx context.Context, s *Stack) error {
	d := s.gatewayData()
	for _, dir := range []string{d.Prefix, d.LuaDir, filepath.Join(d.Prefix, "logs"), filepath.Join(d.Prefix, "temp")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	conf, err := RenderGateway(filepath.Join(s.opts.DeployDir, GatewayTemplate), d)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(d.Prefix, "nginx.conf"), conf, 0o600); err != nil {
		return err
	}
	src := filepath.Join(s.opts.DeployDir, GatewayLuaDir)
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".lua") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d.LuaDir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, nginxPath, append(nginxArgs(s), "-t")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nginx -t %s: %w: %s", filepath.Join(d.Prefix, "nginx.conf"), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func nginxArgs(s *Stack) []string {
	prefix := filepath.Join(s.opts.Dir, "nginx")
	return []string{"-p", prefix + "/", "-c", filepath.Join(prefix, "nginx.conf"),
		"-e", filepath.Join(prefix, "logs", "error.log"), "-g", "daemon off;"}
}

func nginxReady(ctx context.Context, s *Stack) error {
	return httpReady(ctx, "http://"+s.addr(offGateway)+"/healthz")
}

var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// httpReady succeeds once url answers 200.
func httpReady(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, strconv.Itoa(resp.StatusCode))
	}
	return nil
}
