/** Address problems in words an operator reads (not the bech32 decoder's). */
import { channelAddress } from '../protocol/index.js';

const NOT_AN_ADDRESS =
  'not a Parley / LIP-5 address: expected lbr1… (mainnet), tlb1… (testnet) or plb1… (premainnet)';

/** The decoder's reason, said plainly (nothing when the prefix alone tells it). */
function plainDetail(message: string): string {
  if (/hrp/.test(message)) return '';
  if (/checksum/.test(message)) return '; its checksum does not match (a typo?)';
  if (/length|padding|bytes/.test(message)) return '; it has the wrong length';
  if (/bech32 set/.test(message))
    return '; it has a character bech32 does not use (b, i, o or 1 after the prefix)';
  if (/mixed case/.test(message)) return '; it mixes upper and lower case';
  return `; ${message.replace(/^[A-Z_]+: /, '')}`;
}

/** What is wrong with `text` as a VASP address, in plain words; undefined when it is one. */
export function addressProblem(text: string): string | undefined {
  try {
    channelAddress(text);
    return undefined;
  } catch (err) {
    const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
    return `${shown} is ${NOT_AN_ADDRESS}${plainDetail(err instanceof Error ? err.message : String(err))}`;
  }
}

/** The channel form of `text`, or undefined when it is not an address. */
export function safeChannelAddress(text: string): string | undefined {
  try {
    return channelAddress(text);
  } catch {
    return undefined;
  }
}
