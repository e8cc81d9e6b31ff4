package runstore

import (
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkInspect compares the two checks of a finished step's outputs on
// a step shaped like the quick study's large teacher (1.7 MB of weights,
// 480 kB of train logits, the val/test logits, labels and indices): size
// only (State's default) and size plus SHA-256 (--verify).
func BenchmarkInspect(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	key := TeacherKey("large", 0)
	st, err := s.Begin(Manifest{Key: key, Kind: KindTeacher, ConfigHash: "h"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	total := 0
	for name, size := range map[string]int{ModelFile: 1686696, LogitsFile(SplitTrain): 480128, LogitsFile(SplitVal): 240128,
		LogitsFile(SplitTest): 400128, LabelsFile(SplitTrain): 96128, LabelsFile(SplitVal): 48128, LabelsFile(SplitTest): 80128,
		IndexFile(SplitTrain): 96128, IndexFile(SplitVal): 48128, SummaryFile: 900, MetricsLogFile: 3000} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(st.Path(name), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		total += size
	}
	if err := st.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		full bool
	}{{"size", false}, {"sha256", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(total))
			for b.Loop() {
				if in := s.Inspect(key, "h", bc.full); in.State != StateDone {
					b.Fatal(in)
				}
			}
		})
	}
}
