package calibrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/kdcal/kdcal/internal/atomicfile"
)

// File is the JSON form of a fitted calibrator (params.json of a
// calibration step):
//
//	{"method": "temp", "params": {"classes": 10, "temperature": 1.83}, "fit": {...}}
//
// params holds the method's exported fields; fit the Report of the fit.
type File struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Fit    *Report         `json:"fit,omitempty"`
}

// Marshal encodes a fitted calibrator and, when fit != nil, its Report.
func Marshal(cal Calibrator, fit *Report) ([]byte, error) {
	if err := cal.Validate(); err != nil {
		return nil, fmt.Errorf("calibrate: %s: %w", cal.Method(), err)
	}
	p, err := json.Marshal(cal)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<" in the fit criterion readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(File{Method: cal.Method(), Params: p, Fit: fit}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal decodes a calibrator written by Marshal, rejecting unknown
// methods and fields and parameters that fail Validate.
func Unmarshal(b []byte) (Calibrator, *Report, error) {
	var f File
	if err := strictDecode(b, &f); err != nil {
		return nil, nil, err
	}
	if f.Method == "" {
		return nil, nil, errors.New(`no "method"`)
	}
	cal, err := decode(f.Method, f.Params)
	if err != nil {
		return nil, nil, err
	}
	return cal, f.Fit, nil
}

// decode makes the named method's calibrator from its JSON parameters,
// rejecting unknown fields and parameters that fail Validate.
func decode(method string, params []byte) (Calibrator, error) {
	var cal Calibrator
	for _, m := range registry {
		if m.name == method {
			cal = m.make(Options{})
		}
	}
	if cal == nil {
		_, err := New(method, Options{})
		return nil, err
	}
	if len(params) == 0 {
		return nil, errors.New(`no "params"`)
	}
	if err := strictDecode(params, cal); err != nil {
		return nil, fmt.Errorf("%s params: %w", method, err)
	}
	if err := cal.Validate(); err != nil {
		return nil, fmt.Errorf("%s params: %w", method, err)
	}
	return cal, nil
}

func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// Save atomically writes Marshal(cal, fit) to path.
func Save(path string, cal Calibrator, fit *Report) error {
	b, err := Marshal(cal, fit)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// Load reads a calibrator saved by Save; errors name the file.
func Load(path string) (Calibrator, *Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cal, fit, err := Unmarshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a kdcal calibrator: %w", path, err)
	}
	return cal, fit, nil
}
