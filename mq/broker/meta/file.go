package meta

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"qianlang.io/mq/vfs"
)

// writeFile replaces path with data durably: write a temporary file,
// fsync it, rename it over path, fsync the directory.
func writeFile(fs vfs.FS, path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := vfs.MkdirAllSync(fs, dir); err != nil {
		return fmt.Errorf("meta: create %s: %w", dir, err)
	}
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("meta: write %s: %w", path, err)
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
		return fmt.Errorf("meta: write %s: %w", path, err)
	}
	return nil
}

// readFile reads path; a missing file returns false.
func readFile(fs vfs.FS, path string) ([]byte, bool, error) {
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("meta: open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, false, fmt.Errorf("meta: stat %s: %w", path, err)
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("meta: read %s: %w", path, err)
	}
	return data, true, nil
}
