package dataset

// aheadBatch is how many rows the generator hands over at a time, and
// aheadDepth how many batches it may be ahead of the COPY.
const (
	aheadBatch = 1024
	aheadDepth = 4
)

// rowBatch is generated rows, flat: row i is vals[i*cols:(i+1)*cols].
type rowBatch struct {
	vals []any
	n    int
}

// aheadSource is a pgx.CopyFromSource whose rows a goroutine generates a
// few batches ahead, so that generation overlaps the COPY's encoding and
// sending. The rows, and their order, are the source's.
type aheadSource struct {
	cols  int
	full  chan *rowBatch
	free  chan *rowBatch
	quit  chan struct{}
	done  chan struct{}
	cur   *rowBatch
	i     int
	ended bool
}

// generateAhead starts generating src's rows.
func generateAhead(src *source) *aheadSource {
	cols := len(src.t.columns)
	a := &aheadSource{cols: cols, full: make(chan *rowBatch, aheadDepth),
		free: make(chan *rowBatch, aheadDepth+2), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer close(a.full)
		for {
			var b *rowBatch
			select {
			case b = <-a.free:
			default:
				b = &rowBatch{vals: make([]any, aheadBatch*cols)}
			}
			b.n = 0
			for b.n < aheadBatch && src.Next() {
				copy(b.vals[b.n*cols:], src.values)
				b.n++
			}
			if b.n > 0 {
				select {
				case a.full <- b:
				case <-a.quit:
					return
				}
			}
			if b.n < aheadBatch {
				return
			}
		}
	}()
	return a
}

// Next moves to the next row, waiting for the generator when it has none
// ready.
func (a *aheadSource) Next() bool {
	if a.ended {
		return false
	}
	a.i++
	if a.cur == nil || a.i >= a.cur.n {
		if a.cur != nil {
			select {
			case a.free <- a.cur:
			default:
			}
		}
		b, ok := <-a.full
		if !ok {
			a.cur, a.ended = nil, true
			return false
		}
		a.cur, a.i = b, 0
	}
	return true
}

func (a *aheadSource) Values() ([]any, error) {
	return a.cur.vals[a.i*a.cols : (a.i+1)*a.cols], nil
}

func (a *aheadSource) Err() error { return nil }

// stop ends the generator, whether or not it finished, and waits for it.
func (a *aheadSource) stop() {
	close(a.quit)
	<-a.done
}
