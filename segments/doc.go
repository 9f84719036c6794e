// Package segments is the storage engine of segfs: durable, append-only partition logs made of
// segment files, Kafka/Iggy style, written through package directio.
//
// docs/architecture.md shows where this package sits among the others.
//
// # On-disk format
//
//	DATA/.lock                               flock(LOCK_EX|LOCK_NB) by the process that has DATA open
//	DATA/<topic>/<partition>/<base>.log      segments; <base> = first byte offset in the partition,
//	                                         20 zero-padded decimal digits (Kafka's naming, in bytes)
//	DATA/<topic>/<partition>/.commit         padded-block length record (below)
//	DATA/[<topic>/].deleted-<name>-<n>       tombstone of an interrupted delete; Open removes it
//
// Topic names match [A-Za-z0-9][A-Za-z0-9._-]{0,254}; partition names are decimal without leading
// zeros. A partition's bytes are its segments concatenated in base order. Segment files hold the
// appended bytes only, no framing. Every segment but the last (the active one) is sealed: exactly
// its logical size, fsynced, never written again. The one exception is the segment a deferred
// rotation retired and is sealing in the background (see Writing): it is never appended to again,
// and nothing reaches the segment after it before its seal is done. A gap between a sealed segment's end and the next
// base is a purged range; an overlap is corruption and fails Open.
//
// The .commit file has two 512-byte slots, written alternately (slot = seq%2), each with pwrite then
// fdatasync. A record, little endian: magic "SGC1" u32, block u32, seq u64, base i64, length i64,
// blockCRC u32 (CRC-32C of the zero-padded block [alignDown(length), alignUp(length))), crc u32
// (CRC-32C of the 36 bytes before it). The valid slot with the highest seq is current, the other
// one previous.
//
// # Writing
//
// Append is atomic, in call order, and never spans segments: when a non-empty active segment cannot
// take the whole append (size+len > SegmentSize), a rotation retires it first; an append larger than
// SegmentSize goes alone into a fresh segment. Inline, the rotation seals the segment and then
// creates the next one. Deferred, it creates the next segment, lists it as the active one and returns;
// the retired segment (listed as Sealed from that moment, never appended to again) is sealed in the
// background, by the flusher or by whatever needs it first: Sync, a write-through append, Purge,
// Close, the next rotation, or WaitSealed, which readers of its backing file call first. Nothing is
// written to the new segment until then, and no producer waits for the backlog to reach the disk.
//
// Inline: Append calls File.Write, so every full block of the append is written before it returns;
// the sub-block tail stays in the File's memory.
//
// Sync (persist=sync, the mount option sync): Append writes like inline, then Flush (the tail padded,
// after its commit record) and, for io=direct and io=buffered, fdatasync; it returns with every byte
// durable, so Unsynced is false after it. The file is not truncated after the padded write, so the
// active segment may end in a padded block between appends (the next append rewrites that block);
// Sync, seal and Close make it exact. Rotation is inline's.
//
// Deferred: Append copies into a list of pool chunks whose boundaries are aligned to file positions
// (multiples of the chunk size from the segment start) and returns. A per-partition flusher, started
// by the first dirty append and exiting when nothing is dirty, hands the dirty bytes to File.WriteV
// in pieces of at most 8 MiB (maxFlushWrite) cut at chunk boundaries; every chunk after the first is
// aligned in memory and in the file, so pwritev writes it without a copy. Chunks are returned to the pool once the File covers them and all of them once the
// flusher caught up, so an idle partition holds no buffer and no goroutine. Memory is counted in
// chunks against MaxDirty (per partition) and MaxDirtyTotal (global): an append that would exceed
// either blocks until flushers release chunks; an append that could never fit is written through
// (after the dirty bytes before it).
//
// # A full disk
//
// Like ext4's delayed allocation, the append that does not fit fails, and every append that
// succeeded survives. Before an append is accepted, in every mode, the disk space for it is reserved
// in the active segment's file (directio's Reserve: fallocate with KEEP_SIZE), in steps well beyond
// the append so that this costs one fallocate per MiB(s) of appends, not one per append (reserve.go
// states the rule). If even the append's own bytes cannot be reserved, Append fails with an error
// wrapping ENOSPC (or EDQUOT) and accepts nothing; the partition stays usable, and appends succeed
// again once space is freed, e.g. by purging a sealed segment. The reservation covers what inline
// appends acknowledge before writing it (the sub-block tail, written by a later append or Sync) and
// everything deferred appends acknowledge. Sync and seal need no new space: the padded tail block is
// reserved, and both slots of the .commit file are allocated when the partition is opened.
//
// A rotation on a full disk does not fail the partition either. Deferred: if the next segment file
// cannot be created, nothing changes (the segment stays active) and the Append fails; a background
// seal that finds no space keeps the retired segment's bytes in memory like any deferred write (see
// below). Inline: if the seal cannot write the tail, the segment stays active. If the next segment
// file cannot be created, the sealed segment stays the last one: Segments and Active show it as the
// active segment (Sealed is set only once a successor exists), reads work, Sync and Close succeed, and
// the next Append retries creating the successor (never writing to the sealed file) and fails with the
// error until it can.
//
// A deferred write that still fails for lack of space (the reservation makes this rare: a metadata
// block, a reservation lost to another file in the instant between a Sync's truncate and its
// re-reservation, or a filesystem without fallocate) does not lose the bytes silently. They stay in
// memory and readable; every Append and Sync first retries writing them and, while that fails, fails
// with the error (wrapping ENOSPC) without accepting anything new, so the failure is visible; once a
// retry succeeds the partition carries on with nothing lost (until then their memory stays counted
// against MaxDirty and MaxDirtyTotal, so appends of other partitions blocked on the global cap wait for
// that retry too). Closing the Log while they still cannot be written fails with the error, and those
// bytes are lost: they were acknowledged but never synced. Any other failed deferred write, EIO above
// all, is sticky: the partition refuses writes (reads keep working) until the Log is reopened, because
// after a failed write or writeback the kernel may have dropped the data and cleared the error, so a
// retry that succeeds could hide lost bytes (the lesson PostgreSQL learned about fsync). A failed
// fdatasync or fsync of a segment file is always sticky.
//
// Sync writes the dirty bytes, then FlushAndTruncate (pad the tail block, write it, truncate to the
// exact size) and fdatasync. Sealing is: write the dirty bytes, FlushAndTruncate, fsync the file,
// fsync the directory. Inline, only then is the next segment file created and the directory fsynced
// again; deferred, the next file was created when the segment was retired, its directory entry is
// made durable by the seal's directory fsync, and it stays empty until the seal is done. A sealed
// segment keeps no reserved blocks past
// its end. Every Sync first finishes a background seal, so it covers the retired segment's bytes too.
//
// # The padded-block trap and the recovery rule
//
// A direct-I/O flush writes the last partial block padded with zeros and truncates afterwards (or,
// with persist=sync, leaves it padded until the next append rewrites it); a crash before that leaves
// zeros that look like data. So before every padded write (directio's BeforePad hook) the partition
// makes a commit record {base, length L, block B, CRC of the padded block} durable. Recovery of a
// partition, for its active segment only (base, file size S), takes the current and then the
// previous record R with R.base == base:
//
//	for each R, current first {
//	        if S == R.length { trust S }                // exact, as R left it
//	        if S == alignUp(R.length, R.block) &&
//	           CRC-32C(file[S-R.block, S)) == R.blockCRC {
//	                truncate the file to R.length   // the padding never became data
//	        }
//	}
//	otherwise trust S
//
// then fdatasync the segment. The previous record matters when the file still ends in its padded
// block because the current record's padded write never happened (persist=sync keeps the file
// padded between appends, so a record can replace the one describing the padding on disk). Sealed
// segments are trusted by size, with one exception: if the last
// segment is empty, a crash may have interrupted a deferred rotation before the retired segment was
// sealed, so the segment before it gets the same repair and fdatasync. If it then ends before the
// empty segment's base (bytes not yet flushed were lost), the empty segment is removed and the
// retired one is the active segment again: the partition stays a prefix with no hole. Cost: a directory listing and a
// stat per segment, one record read and at most two block reads per partition: O(partitions +
// segments), no scan of data. Why it is exact: padding reaches the disk only in a padded write, whose
// record is durable before it, and a record's block CRC matches only while the file still ends in
// exactly that padded block. The one false match is data that happens to equal the padding (zeros
// from R.length to the block end); after a Sync, seal or persist=sync append that leaves the segment
// ending exactly where either record's block ends, the partition writes a record of the exact
// length (at which recovery stops), so a false match can only cut bytes never synced, and fewer than
// one block of them.
//
// # Durability after a crash
//
// In every mode: no byte acknowledged by Sync or by a seal (inline: the rotation; deferred: WaitSealed,
// or any Sync after the rotation) is lost; no padding, zero fill or torn
// byte ever appears as data; the recovered partition is a prefix of what was appended (from its first
// retained segment). Beyond Sync:
//
//	io        persist   process killed (kill -9)            power loss
//	buffered  inline    nothing acknowledged is lost         unsynced appends may be lost
//	direct    inline    < one block (alignment) per          unsynced appends may be lost
//	                    partition: the in-memory tail
//	dsync     inline    < one block per partition            < one block per partition (every
//	                                                         full block was written O_DSYNC)
//	any       deferred  appends not yet flushed are lost     unsynced appends may be lost
//	any       sync      nothing acknowledged is lost         nothing acknowledged is lost
//
// The crash tests model a process crash as "every completed call persists" and a power loss as
// "each file keeps the calls before its last fdatasync/fsync, plus O_DSYNC writes; each directory
// keeps the entries before its last fsync; optionally one file or directory also keeps a prefix of
// its later calls". Each pwritev is taken as atomic (sector atomicity of the device); ext4's ordered
// journal provides the per-file prefix behaviour for the sequential writes made here.
//
// # Locking
//
// Per partition, in the order they are taken (a lock is never taken while holding one below it):
//
//   - writer.appendMu: the order of appends and rotations. Held across inline appends and
//     seals; readers never take it.
//   - Partition.nsMu: Purge against delete and close.
//   - writer.mu: everything in writer (the active File, the commit file, the reservation, the
//     flusher's writes, the seal in progress). Held across disk I/O; readers never take it.
//   - segList.mu: the segment list, and the seal in progress as it is listed. Memory only.
//   - segment.mu (readers shared), then segment.rfdMu; budget.mu, then dirtyBuf.mu; flusher.mu.
//     Memory only; none of them is held while taking a lock above it.
//
// The health, the seal in progress, sizes and offsets are atomics: they change under the locks above
// and are read without them. Log.nsMu (namespace changes, Close) comes before every partition lock;
// Log.mu and Topic.mu guard maps only.
//
// # Concurrency
//
// Readers (ReadAt, ReadSegment, Segments, Size, Unsynced) never take a lock that is held across a
// disk write: they take the partition's list lock and then one segment's read lock, both held by
// writers only for memory operations, and read through the File's ReadAt (tail in memory, the rest
// with pread on a separate descriptor) or the deferred chunks (copied under a short mutex). A
// segment's read source is switched at its seal and closed at purge or delete under the exclusive
// segment lock, so no read ever sees a reused descriptor, i.e. another segment's bytes. Purge,
// retention and delete are correct while appends, reads and flushes run: a segment is purged only
// once it is sealed and its File closed (Purge of the segment being sealed finishes its seal first);
// delete halts the partition (blocked appends return), waits for the running append and the flusher,
// closes every File without writing (BeforePad refuses), then renames the directory to a tombstone,
// fsyncs the parent and removes the tombstone.
//
// Every goroutine and timer has an owner that stops it: a partition's flusher and its lazy-start
// timer stop at its close or delete; the Log's retention goroutine and chunk-trim timer at Close.
package segments
