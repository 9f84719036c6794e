// Package directio provides File, an append-only file that writes through O_DIRECT (optionally with
// O_DSYNC) without ever losing or inventing a byte, and a buffered implementation behind the same
// interface so that everything above this package is shared by all I/O modes.
//
// # On-disk behaviour (Direct, DirectSync)
//
// O_DIRECT only accepts I/O whose file offset, length and buffer address are aligned. The alignment
// comes from statx(STATX_DIOALIGN), falling back to the device's logical block size, then 4096; a File
// writes in blocks of the larger of the offset and memory alignment. The logical content of a File is
// a run of full blocks on disk followed by a tail of fewer than one block's bytes kept in memory:
//
//   - A write of whole blocks at a block boundary from a memory-aligned buffer is passed to pwritev
//     as it is, with no copy.
//   - A write that does not complete the tail block only extends the tail; nothing is written.
//   - A write that completes the tail block writes that block; the caller's bytes that follow are
//     written as full blocks (zero-copy where aligned, copied into pooled aligned blocks where not)
//     in the same pwritev, and what is left over becomes the new tail.
//   - Flush pads the tail with zeros and writes that block, keeping the tail in memory: the next write
//     that completes the block rewrites it in place. The file then is longer than the logical size.
//   - FlushAndTruncate flushes, then truncates the file to the exact logical size, so a closed file
//     holds no padding and reopening recovers the size from the file size and the tail from its last
//     partial block.
//   - Close is FlushAndTruncate followed by closing the descriptors. Neither Close nor
//     FlushAndTruncate syncs: call Sync for durability of the size.
//
// If the process dies between a Flush and the truncate, the file ends in zero padding up to a block
// boundary; Options.BeforePad lets a caller record the logical size before any padded write so it can
// tell padding from data on recovery. Bytes that were only in the tail are lost in a crash.
//
// A failed Write, WriteV or Flush leaves Size and the file (its size and every byte of it) as they
// were: the block that held the padded tail is rewritten and the file truncated back. Should that
// restore fail too, the error says so, Size and ReadAt are still exact, and only bytes past the logical
// size may differ until the next FlushAndTruncate, which repairs the file. Short writes are
// retried from the last block boundary reached and surfaced as io.ErrShortWrite if they stop making
// progress. Errors wrap the errno, so errors.Is(err, unix.ENOSPC) works. A filesystem that rejects
// O_DIRECT yields an error wrapping ErrDirectIOUnsupported that names the path and suggests io=buffered.
//
// # Reserving space
//
// Reserve(end) allocates the blocks up to end with fallocate(FALLOC_FL_KEEP_SIZE): the size and the
// content stay as they are, but the appends up to end (and the padded writes of their tail) no longer
// need a block from the filesystem, so a full disk is reported by Reserve, before the caller accepts
// bytes it can only write later, instead of by a write after it acknowledged them. It works in every
// mode; in Buffered mode it also keeps the page cache from accepting bytes that writeback could not
// place. The blocks are unwritten extents until written, which the filesystem converts as part of the
// write. A range already reserved costs no syscall. Every truncate frees the blocks past the end, so
// a reservation ends with a FlushAndTruncate that has to truncate (in the direct modes whenever the
// tail is partial; in Buffered mode it survives, so a Sync costs nothing extra), with the rollback of
// a failed write, and with Close, which truncates to the same size if anything was reserved past the
// end, so a closed file keeps no spare blocks. On a filesystem without fallocate (EOPNOTSUPP) Reserve
// is a no-op, remembered for the File's lifetime. A failed Reserve wraps the errno (ENOSPC, EDQUOT)
// and changes nothing the File reports.
//
// # Buffered
//
// Buffered mode pwrites every byte at once through the page cache: no tail, no padding, Flush does
// nothing and the file always has its logical size. Sync is fdatasync in Buffered and Direct mode; in
// DirectSync mode every write is already durable and Sync only fdatasyncs after a truncate.
//
// # Concurrency contract
//
// Write, WriteV, Flush, FlushAndTruncate, Reserve, Sync and Close must be called by one goroutine at a
// time; the caller serializes them. Size and ReadAt may run concurrently with all of them and with each
// other, and never wait for disk I/O of the writer: Size is an atomic load, and ReadAt holds a mutex
// only while copying tail bytes from memory. Bytes below the tail are read from disk through a second,
// read-only descriptor without O_DIRECT. The size and the tail only advance after the blocks that hold
// the new bytes have been written, so while a write is in flight readers still see the previous
// content, served from memory where it is not yet on disk. ReadAt never returns padding and returns
// io.EOF past Size. Close waits for ReadAt calls that are reading from disk; ReadAt after Close fails.
//
// docs/architecture.md shows where this package sits among the others.
package directio
