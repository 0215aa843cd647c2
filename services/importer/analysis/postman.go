package analysis

// analyzePostman analyses a Postman Collection v2.0 or v2.1. Postman
// collections are detected and refused for now.
func analyzePostman(src *source, _ Options) (*Result, error) {
	return nil, &UnsupportedFormatError{Format: src.format}
}
