package journal

// AppendHashedJSON appends the bytes that are hashed for r. PLACEHOLDER: replaced by the
// canonical JSON encoder.
func AppendHashedJSON(dst []byte, r *Record) []byte {
	c := *r
	c.Hash = Hash{}
	return AppendRecord(dst, &c)
}
