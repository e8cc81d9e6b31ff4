package table

import "testing"

func TestTexEscape(t *testing.T) {
	for in, want := range map[string]string{
		"85.60 ± 0.62":       `85.60 $\pm$ 0.62`,
		"kd_weight = 0.9, %": `kd\_weight = 0.9, \%`,
		"< 0.001":            `$<$ 0.001`,
		"[−0.50, 1.00]":      `[$-$0.50, 1.00]`,
		"—":                  `--`,
	} {
		if got := TexEscape(in); got != want {
			t.Errorf("TexEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
