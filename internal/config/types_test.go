package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestWrongTypes pins the error for a value of the wrong type from each
// source: it names the source (the file with its line, the environment
// variable, the flag), the key, the value and the expected type, and holds
// no text from the decoding library.
func TestWrongTypes(t *testing.T) {
	tests := []struct {
		name string
		file string // YAML body of a config file, if any
		env  []string
		set  map[string]string
		want string // the whole error, with FILE for the file's path
	}{
		{"fractional epochs", "teacher:\n  train:\n    epochs: 2.5\n", nil, nil,
			"FILE:3: teacher.train.epochs: got 2.5 (a fractional number), expected a whole number; 2.5 has a fractional part, and kdcal does not round it"},
		{"boolean epochs", "student:\n  train:\n    epochs: true\n", nil, nil,
			"FILE:3: student.train.epochs: got true (a boolean), expected a whole number"},
		{"quoted number", "data:\n  val_fraction: \"0.2\"\n", nil, nil,
			`FILE:2: data.val_fraction: got "0.2" (quoted text), expected a finite number; remove the quotes to give a number`},
		{"text for a number", "teacher:\n  train:\n    lr: fast\n", nil, nil,
			`FILE:3: teacher.train.lr: got "fast" (text), expected a finite number`},
		{"null for a number", "teacher:\n  train:\n    lr:\n", nil, nil,
			"FILE:3: teacher.train.lr: got no value, expected a finite number"},
		{"infinite", "teacher:\n  train:\n    lr: .inf\n", nil, nil,
			"FILE:3: teacher.train.lr: got .inf (not a finite number), expected a finite number"},
		{"list for a scalar", "run:\n  workers: [1, 2]\n", nil, nil,
			"FILE:2: run.workers: got a list, expected a whole number"},
		{"scalar for a section", "kd: 5\n", nil, nil,
			"FILE:1: kd: got 5 (an integer), expected a section of keys"},
		{"section for a list", "seeds: {a: 1}\n", nil, nil,
			"FILE:1: seeds: got a section of keys, expected a list of whole numbers (e.g. [0, 1, 2])"},
		{"bad list element", "kd:\n  temperature: [1, two, 4]\n", nil, nil,
			`FILE:2: kd.temperature[1]: got "two" (text), expected a finite number`},
		{"nested list element", "seeds: [[1]]\n", nil, nil,
			"FILE:1: seeds: element 0: got a list, expected a whole number"},
		{"huge integer", "seeds: [1e30]\n", nil, nil,
			"FILE:1: seeds[0]: got 1e30 (a number), expected a whole number; it is too large"},
		{"key twice", "seeds: [1]\nseeds: [2]\n", nil, nil,
			"FILE:2: seeds: is set twice in this section; keep one"},
		{"environment", "", []string{"KDCAL_TEACHER_TRAIN_EPOCHS=2.5"}, nil,
			"environment variable KDCAL_TEACHER_TRAIN_EPOCHS: teacher.train.epochs: got 2.5 (a fractional number), expected a whole number; 2.5 has a fractional part, and kdcal does not round it"},
		{"environment list", "", []string{"KDCAL_SEEDS=1,x"}, nil,
			`environment variable KDCAL_SEEDS: seeds[1]: got "x" (text), expected a whole number`},
		{"flag", "", nil, map[string]string{"student.train.epochs": "true"},
			"flag --set: student.train.epochs: got true (a boolean), expected a whole number"},
		{"flag section", "", nil, map[string]string{"student.model": "{hidden: [8.5]}"},
			"flag --set: student.model.hidden[0]: got 8.5 (a fractional number), expected a whole number; 8.5 has a fractional part, and kdcal does not round it"},
		{"flag not YAML", "", nil, map[string]string{"seeds": "[1"},
			`flag --set: seeds: value "[1" is not valid YAML: line 1: did not find expected ',' or ']'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Source{Env: tt.env, Set: tt.set}
			if tt.file != "" {
				src.File = writeFile(t, tt.file)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("no error")
			}
			want := strings.ReplaceAll(tt.want, "FILE", src.File)
			if err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
			for _, internal := range []string{"mapstructure", "expected type", "invalid keys", "unmarshal", "reflect"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("error holds decoder-internal text %q", internal)
				}
			}
		})
	}
}

// TestValuesMeanWhatTheySay pins the accepted forms: integral floats for
// whole numbers, exponents for floats, exact text for text keys, single
// values and comma lists for lists, YAML anchors and merges.
func TestValuesMeanWhatTheySay(t *testing.T) {
	file := writeFile(t, `name: 007
teacher:
  train: &recipe
    epochs: 2.0
    lr: 1e-3
    batch_size: 1e2
student:
  train:
    <<: *recipe
    epochs: 3
kd:
  temperature: 2
run:
  slurm:
    time: 1:30:00
    partition: ~
`)
	c, err := Load(Source{File: file, Env: []string{"KDCAL_DATA_DIR=/mnt/a b:c", "KDCAL_REPORT_FORMATS=png"},
		Set: map[string]string{"seeds": "4, 5", "experiments_dir": "0x10"}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"name: 007 is text", c.Name, "007"},
		{"epochs: 2.0", c.Teacher.Train.Epochs, 2},
		{"lr: 1e-3", c.Teacher.Train.LR, 0.001},
		{"batch_size: 1e2", c.Teacher.Train.BatchSize, 100},
		{"merge key", c.Student.Train.LR, 0.001},
		{"explicit key over merge", c.Student.Train.Epochs, 3},
		{"one value for a list", c.KD.Temperature, []float64{2}},
		{"time is text", c.Run.Slurm.Time, "1:30:00"},
		{"null text", c.Run.Slurm.Partition, ""},
		{"environment text verbatim", c.Data.Dir, "/mnt/a b:c"},
		{"environment single list value", c.Report.Formats, []string{"png"}},
		{"flag comma list", c.Seeds, []int{4, 5}},
		{"flag text verbatim", c.ExperimentsDir, "0x10"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %#v, want %#v", ck.what, ck.got, ck.want)
		}
	}
}

// TestDuplicateGridValues checks that every grid list refuses repeats, as
// seeds and teacher sizes do.
func TestDuplicateGridValues(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"seeds", "[0, 1, 0]", "seeds: seed 0 is listed twice"},
		{"teacher.sizes", "[tiny, tiny]", `teacher.sizes: size "tiny" is listed twice`},
		{"kd.temperature", "[4, 2, 4.0]", "kd.temperature: temperature 4 is listed more than once"},
		{"kd.kd_weight", "[0.5, 0.5]", "kd.kd_weight: weight 0.5 is listed more than once"},
		{"calibration.methods", "[temp, temp, temp]", "calibration.methods: method temp is listed more than once"},
		{"kd.student_epochs", "[5, 5]", "kd.student_epochs: epoch count 5 is listed more than once"},
		{"kd.arms", "[raw, scratch, raw]", "kd.arms: arm raw is listed more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := Load(Source{Set: map[string]string{tt.key: tt.value}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "listed"); n != 1 {
				t.Errorf("%d reports of the duplicate, want 1: %v", n, err)
			}
		})
	}
}

// TestFileShape pins the errors for config files that are empty, hold only
// comments, hold several documents or are not a mapping.
func TestFileShape(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", "", "the config file is empty (or holds only comments)"},
		{"only comments", "# nothing here\n\n# at all\n", "the config file is empty (or holds only comments)"},
		{"only a document marker", "---\n", "the config file is empty"},
		{"two documents", "seeds: [1]\n---\nseeds: [2]\n", "holds more than one YAML document"},
		{"a list", "- seeds\n", ":1: got a list, expected a section of keys"},
		{"not YAML", "seeds: [1\n", "not valid YAML: line 1"},
		{"tab indentation", "data:\n\tdir: x\n", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.body)
			_, err := Load(Source{File: p})
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want a *config.Error naming %s and containing %q", err, p, tt.want)
			}
		})
	}
}

// TestSplitNeedsEveryClass checks the splits Validate can foresee: a
// training limit below the number of classes and, for the synthetic set
// (whose class counts the configuration determines), a validation fraction
// that leaves a class without validation or training examples. Splits of
// real datasets are checked when they are loaded (data.Load).
func TestSplitNeedsEveryClass(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"train_limit below classes", map[string]string{"data.train_limit": "9"},
			"data.train_limit: 9 is fewer than the 10 classes of fashion-mnist"},
		{"cifar100 limit", map[string]string{"data.dataset": "cifar100", "data.train_limit": "50"},
			"data.train_limit: 50 is fewer than the 100 classes of cifar100"},
		{"synthetic val empty", map[string]string{"data.dataset": "synthetic", "data.val_fraction": "0.0009"},
			"data.val_fraction: 0.0009 puts no example in the validation split for classes of 500 examples (round(0.0009 × 500) = 0"},
		{"synthetic train empty", map[string]string{"data.dataset": "synthetic", "data.val_fraction": "0.5",
			"data.synthetic.train": "10", "data.synthetic.classes": "10"},
			"data.val_fraction: 0.5 leaves no training example for classes of 1 examples"},
		{"synthetic fewer examples than classes", map[string]string{"data.dataset": "synthetic",
			"data.synthetic.train": "10", "data.synthetic.classes": "20"},
			"data.synthetic.train: 10 examples cannot cover 20 classes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Source{Set: tt.set})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	ok := map[string]string{"data.dataset": "synthetic", "data.val_fraction": "0.002"} // round(0.002 × 500) = 1
	if _, err := Load(Source{Set: ok}); err != nil {
		t.Errorf("val_fraction 0.002 on 500 per class: %v", err)
	}
}
