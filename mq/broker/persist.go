package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"qianlang.io/mq/vfs"
)

// writeJSONFile replaces path with v as JSON durably: write a temporary
// file, fsync it, rename it over path, fsync the directory.
func writeJSONFile(fs vfs.FS, path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("broker: encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := vfs.MkdirAllSync(fs, dir); err != nil {
		return fmt.Errorf("broker: create %s: %w", dir, err)
	}
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("broker: write %s: %w", path, err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("broker: write %s: %w", path, err)
	}
	return nil
}

// readJSONFile loads path into v; a missing file leaves v as it is and
// returns false.
func readJSONFile(fs vfs.FS, path string, v any) (bool, error) {
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("broker: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return false, fmt.Errorf("broker: stat %s: %w", path, err)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("broker: read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("broker: %s is damaged: %w", path, err)
	}
	return true, nil
}
