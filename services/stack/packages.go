package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// debianPackages are installed (all at once) when any file they provide
// is missing. Debian's packages do not start their services here; the
// stack starts its own instances.
var debianPackages = []string{"mariadb-server", "mariadb-client", "redis-server", "zookeeper", "nginx", "libnginx-mod-http-lua"}

// jrePackage is added when there is no java on PATH.
const jrePackage = "default-jre-headless"

// requiredFiles maps each file the stack runs to the component that needs it.
var requiredFiles = []struct{ path, component string }{
	{mariadbdPath, "mariadb"},
	{installDBPath, "mariadb"},
	{redisPath, "redis"},
	{nginxPath, "nginx"},
	{luaModulePath, "nginx"},
	{zookeeperJar, "zookeeper"},
}

// missingPackages returns what the selected components lack: files, and
// whether java is missing.
func missingPackages(selected map[string]bool) (files []string, noJava bool) {
	for _, f := range requiredFiles {
		if !selected[f.component] {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			files = append(files, f.path)
		}
	}
	if selected["zookeeper"] {
		if _, err := exec.LookPath("java"); err != nil {
			noJava = true
		}
	}
	return files, noJava
}

// ensurePackages installs the Debian packages when a file the selected
// components need is missing: apt-get update once, then one apt-get install.
func (s *Stack) ensurePackages(ctx context.Context) error {
	files, noJava := missingPackages(s.selected)
	if len(files) == 0 && !noJava {
		return nil
	}
	pkgs := append([]string(nil), debianPackages...)
	if noJava {
		pkgs = append(pkgs, jrePackage)
		files = append(files, "java")
	}
	install := "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing %s: run as root, or install them first: apt-get update && %s", strings.Join(files, ", "), install)
	}
	s.log.Info("installing Debian packages", "missing", files, "packages", pkgs, "log", s.logPath("apt"))
	start := time.Now()
	if err := s.runLogged(ctx, "apt", "apt-get", "update"); err != nil {
		return err
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	if err := s.runLogged(ctx, "apt", "apt-get", args...); err != nil {
		return err
	}
	if files, noJava := missingPackages(s.selected); len(files) > 0 || noJava {
		return fmt.Errorf("still missing after %s: %v (java missing: %v)", install, files, noJava)
	}
	s.log.Info("installed Debian packages", "took", time.Since(start).Round(time.Second))
	return nil
}
