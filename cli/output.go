package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkOutputPath refuses an -o target that cannot be written, before any
// work is done: a missing directory, or a directory given as the file.
func checkOutputPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot write -o %s: directory %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("cannot write -o %s: %w", path, pathErr(err))
	case !st.IsDir():
		return fmt.Errorf("cannot write -o %s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("cannot write -o %s: it is a directory", path)
	}
	return nil
}

// writeFileAtomic writes data to path so that readers see either the old
// file or the complete new one, never a part: it writes a temporary file in
// the same directory, syncs it, and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	fail := func(err error) error { return fmt.Errorf("cannot write -o %s: %w", path, pathErr(err)) }
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	return nil
}
