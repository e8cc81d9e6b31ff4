package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/kdcal/kdcal/internal/config"
)

// rawSafetensors builds a file from a header JSON text and data bytes.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// savedModel returns the bytes of a small saved MLP.
func savedModel(t testing.TB) []byte {
	t.Helper()
	w := randomWeights(t, "mlp", config.ModelSpec{"hidden": []int{3}}, 1, 2, 2, 2)
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(p, w, Meta{Dataset: "synthetic"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withMeta re-serializes a model file's tensors with other kdcal metadata.
func withMeta(t *testing.T, b []byte, meta string) []byte {
	t.Helper()
	st, err := safetensors.Deserialize(b)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]safetensors.TensorView{}
	for _, nt := range st.Tensors() {
		views[nt.Name] = nt.TensorView
	}
	out, err := safetensors.Serialize(views, map[string]string{MetaKey: meta})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSafetensorsBadFiles pins the error for each kind of damaged or
// foreign file: a *FileError naming the file, never a panic, and nothing
// allocated from what the header or metadata merely claims.
func TestSafetensorsBadFiles(t *testing.T) {
	good := savedModel(t)
	var meta Meta
	_, md, _ := parse("good", good)
	json.Unmarshal([]byte(md[MetaKey]), &meta)
	huge := meta
	huge.Hidden = []int{1 << 30} // 4 GiB of float32 weights, which the file does not hold
	hugeJSON, _ := json.Marshal(huge)
	wide := meta
	wide.Hidden = []int{4}
	wideJSON, _ := json.Marshal(wide)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a safetensors file: 0 bytes, too short"},
		{"text", []byte("not a safetensors file"), "header length 7021991845529153390 is over the format's 100000000-byte bound"},
		{"header longer than the file", rawSafetensors(`{}`, nil)[:9], "truncated: the header length says 2 bytes, the file has 1"},
		{"header at the bound but short file", binary.LittleEndian.AppendUint64(nil, 99_999_999), "truncated: the header length says 99999999 bytes, the file has 0"},
		{"not JSON", rawSafetensors(`{"a": `, nil), "not a valid safetensors file: invalid header deserialization"},
		{"offsets past the data", rawSafetensors(`{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}`, make([]byte, 4)), "not a valid safetensors file"},
		{"offsets do not match the shape", rawSafetensors(`{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}`, make([]byte, 8)), "info data offsets mismatch"},
		{"shape overflows", rawSafetensors(`{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}`, make([]byte, 8)), "overflow"},
		{"unknown dtype", rawSafetensors(`{"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}`, make([]byte, 1)), "not a valid safetensors file"},
		{"no kdcal metadata", rawSafetensors(`{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}`, make([]byte, 4)), `metadata has no "kdcal_model" entry`},
		{"metadata not JSON", withMeta(t, good, "{"), `metadata "kdcal_model" is not valid`},
		{"metadata of no architecture", withMeta(t, good, `{"family": "rnn"}`), "metadata describes no valid architecture: unknown family"},
		{"metadata claims a huge model", withMeta(t, good, string(hugeJSON)), `tensor "fc0.weight" is F32 [3 4], want F32 [1073741824 4]`},
		{"tensor of the wrong shape", withMeta(t, good, string(wideJSON)), `tensor "fc0.weight" is F32 [3 4], want F32 [4 4]`},
		{"torn file", good[:len(good)-4], "not a valid safetensors file: metadata incomplete buffer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(p, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Load(p)
			runtime.ReadMemStats(&after)
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != p || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a *FileError on %s containing %q", err, p, tt.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file", got, len(tt.file))
			}
		})
	}
	dir := t.TempDir()
	if _, _, err := Load(filepath.Join(dir, "absent.safetensors")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "absent.safetensors: file not found") {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

// FuzzSafetensors feeds arbitrary bytes to the model reader: no panic, no
// allocation beyond the input, and a model it accepts saves and loads back
// to the same weights and metadata.
func FuzzSafetensors(f *testing.F) {
	f.Add(savedModel(f))
	f.Add(rawSafetensors(`{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"kdcal_model": "{}"}}`, make([]byte, 4)))
	f.Add(rawSafetensors(`{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}`, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 || binary.LittleEndian.Uint64(b) > uint64(len(b)-8) {
			return // refused by readChecked before parsing (pinned by TestSafetensorsBadFiles)
		}
		st, md, err := parse("fuzz", b)
		if err != nil {
			return
		}
		w, meta, err := fromTensors("fuzz", st, md)
		if err != nil {
			return
		}
		p := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(p, w, meta); err != nil {
			t.Fatalf("an accepted model does not save: %v", err)
		}
		w2, meta2, err := Load(p)
		if err != nil || !slices.Equal(w2.Flat(), w.Flat()) || w2.Arch.String() != w.Arch.String() || meta2.Dataset != meta.Dataset {
			t.Fatalf("round trip: %v", err)
		}
	})
}
