// Package directio provides File, an append-only file written through O_DIRECT (optionally
// O_DSYNC) that never loses or invents a byte, and a buffered File behind the same interface.
//
// # On-disk format (Direct, DirectSync)
//
// A File is full blocks on disk plus a tail of under one block in memory; the block is the
// Options.Alignment given (segments uses WriteAlignment: whole file-system blocks), else the
// statx(STATX_DIOALIGN) alignment, else the device's logical block size, else 4096. Aligned
// whole blocks go to pwritev uncopied. Flush writes the tail padded with zeros; FlushAndTruncate
// then truncates to Size, so reopening recovers the tail. Close is FlushAndTruncate; only Sync
// makes the size durable. A crash after Flush leaves padding, which Options.BeforePad lets the
// caller tell from data; bytes only in the tail are lost.
//
// # Failures
//
// A failed write restores Size and every byte of the file; if the restore fails, Size and ReadAt
// stay exact and the next FlushAndTruncate repairs the file. Short writes resume at the last
// block boundary. Errors wrap the errno; a filesystem without O_DIRECT yields
// ErrDirectIOUnsupported.
//
// # Reserving space
//
// Reserve allocates blocks with fallocate(FALLOC_FL_KEEP_SIZE), so ENOSPC comes before the
// caller accepts bytes. Every truncate frees the reservation; without fallocate it is a no-op.
//
// # Concurrency
//
// One goroutine at a time calls the writer methods. Size and ReadAt run concurrently and never
// wait for the writer's I/O: ReadAt locks only to copy the tail and reads the rest through a
// second descriptor. Close waits for reads in flight.
package directio
