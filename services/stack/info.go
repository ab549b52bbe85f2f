package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Info is DIR/stack.json, as the platform contract (§1) fixes it.
// Addresses of components that were not started are empty.
type Info struct {
	Gateway    string            `json:"gateway"`
	Provider   string            `json:"provider"`
	Console    string            `json:"console"`
	Namesrv    []string          `json:"namesrv"`
	MySQL      string            `json:"mysql"`
	Redis      string            `json:"redis"`
	ZooKeeper  string            `json:"zookeeper"`
	AdminToken string            `json:"admin_token"`
	Brokers    map[string]string `json:"brokers"`
	Processes  map[string]int    `json:"processes"`
	// Services maps each service (and the provider) to its own base URL,
	// where /healthz and /metrics are served (an addition to the
	// contract's fields).
	Services map[string]string `json:"services"`
}

// InfoFile is the name of stack.json in a stack directory.
const InfoFile = "stack.json"

// ReadInfo reads DIR/stack.json.
func ReadInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("%s: %w", filepath.Join(dir, InfoFile), err)
	}
	return info, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path, so a reader sees the old or the new content.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
