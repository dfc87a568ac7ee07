/**
 * TWAMP-Control framing on the server side: every client command is a whole
 * number of 16-octet blocks (RFC 4656 §3), and its length follows from the
 * first block (RFC 5357 §3.5–3.8, RFC 5938 §3, RFC 9533).
 */
import { readU32, requireOctets } from '../bytes.js';
import { Command } from '../constants.js';

const BLOCK = 16;

/**
 * Total length in octets of the client command whose first (decrypted)
 * 16-octet block is given, or undefined for a command whose length is
 * unknowable (0, 1, 4, 6, 8, 10, 12–255: answer Accept-Session Accept = 3
 * and close, RFC 5357 §3.5). For Start-/Stop-N-Sessions N is taken as
 * read; the caller must bound it before buffering 32 + 16·N octets.
 * Throws DecodeError when fewer than 16 octets are given.
 */
export function clientCommandLength(firstBlock: Uint8Array): number | undefined {
  requireOctets('TWAMP-Control command', firstBlock, 0, BLOCK);
  switch (firstBlock[0]) {
    case Command.REQUEST_TW_SESSION:
    case Command.REQUEST_TW_MICRO_SESSIONS:
      return 112;
    case Command.START_SESSIONS:
    case Command.STOP_SESSIONS:
      return 32;
    case Command.START_N_SESSIONS:
    case Command.STOP_N_SESSIONS:
      // 16 header + 16·N SIDs + 16 HMAC (RFC 5938 §3).
      return 32 + BLOCK * readU32(firstBlock, 12);
    default:
      return undefined;
  }
}
