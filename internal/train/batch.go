package train

// batch is what one step trains on: m ≤ bs valid examples.
type batch struct {
	x   []float32 // m × D inputs
	y   []int     // m labels
	pos []int     // m positions in the train split (rows of KD targets)
}

// weighting holds the constants folded into the target tensors.
type weighting struct {
	ce  float64 // w_ce (0: no CE term)
	eps float64 // label smoothing ε
}

// fill writes batch b into the graph's input tensors: inputs (zero-padded
// to the batch size), CE targets w_ce·((1−ε)·onehot(y) + ε/C)/m for the m
// valid rows, zero for padded rows, and the KD term's inputs (its Fill).
func (lg *lossGraph) fill(b batch, w *weighting) {
	switch x := lg.xt.Data().(type) {
	case []float32:
		fillT(lg, x, b, w)
	case []float64:
		fillT(lg, x, b, w)
	}
}

func fillT[T float32 | float64](lg *lossGraph, x []T, b batch, w *weighting) {
	m, c := len(b.y), lg.c
	if len(b.x) != m*lg.d || len(b.pos) != m || m*lg.d > len(x) {
		panic("train: batch does not fit the graph")
	}
	for i, v := range b.x {
		x[i] = T(v)
	}
	clear(x[len(b.x):])
	inv := 1 / float64(m)
	if lg.yt != nil {
		y := lg.yt.Data().([]T)
		clear(y)
		off := T(w.ce * w.eps / float64(c) * inv)
		on := T(w.ce * ((1 - w.eps) + w.eps/float64(c)) * inv)
		for i, label := range b.y {
			row := y[i*c : (i+1)*c]
			for k := range row {
				row[k] = off
			}
			row[label] = on
		}
	}
	if lg.term != nil {
		lg.term.Fill(b.pos, b.y)
	}
}
