package figure

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
)

// pngSignature starts every PNG file (PNG spec, §5.2).
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// withDPI returns the PNG file b with a pHYs chunk recording dpi dots per
// inch, inserted after IHDR (PNG spec, §11.3.5.3: pixels per metre, unit 1,
// before the first IDAT). image/png writes no pHYs chunk and offers no
// option for one, hence this; a file that already has one is an error.
func withDPI(b []byte, dpi float64) ([]byte, error) {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	if len(b) < ihdrEnd || !bytes.Equal(b[:8], pngSignature) || string(b[12:16]) != "IHDR" {
		return nil, errors.New("png: not a PNG file starting with IHDR")
	}
	if _, _, ok := DPIOf(b); ok {
		return nil, errors.New("png: already has a pHYs chunk")
	}
	ppm := uint32(math.Round(dpi / 0.0254))
	data := make([]byte, 9)
	binary.BigEndian.PutUint32(data[0:], ppm)
	binary.BigEndian.PutUint32(data[4:], ppm)
	data[8] = 1 // unit: metre
	chunk := pngChunk("pHYs", data)
	out := make([]byte, 0, len(b)+len(chunk))
	out = append(out, b[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, b[ihdrEnd:]...), nil
}

// pngChunk encodes one chunk: length, type, data, CRC-32 of type and data.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// DPIOf returns the horizontal and vertical resolution, in dots per inch,
// that the pHYs chunk of the PNG file b records, and false when it has no
// pHYs chunk in metres (or is not a PNG file).
func DPIOf(b []byte) (x, y float64, ok bool) {
	if len(b) < 8 || !bytes.Equal(b[:8], pngSignature) {
		return 0, 0, false
	}
	for p := 8; p+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[p:]))
		typ := string(b[p+4 : p+8])
		if p+12+n > len(b) {
			return 0, 0, false
		}
		if typ == "pHYs" && n == 9 && b[p+8+8] == 1 {
			return float64(binary.BigEndian.Uint32(b[p+8:])) * 0.0254, float64(binary.BigEndian.Uint32(b[p+12:])) * 0.0254, true
		}
		if typ == "IDAT" || typ == "IEND" {
			return 0, 0, false // pHYs must come before the image data
		}
		p += 12 + n
	}
	return 0, 0, false
}
