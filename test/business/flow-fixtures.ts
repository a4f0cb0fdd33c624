import { PaymentObject } from '../../src/protocol/index.js';
import { readFixtureJson, readFixtureLines } from '../helpers/fixtures.js';

/** One command of `flows.jsonl`, reduced to what the business tests need. */
export interface FlowStep {
  flow: 'a' | 'b' | 'c';
  step: number;
  from: Party;
  to: Party;
  /** The full payment the command carries, parsed as the channel would. */
  payment: PaymentObject;
}

export type Party = 'A' | 'B';

interface FlowLine {
  flow: 'a' | 'b' | 'c';
  step: number;
  from: Party;
  to: Party;
  request_payload: { command: { payment: unknown } };
}

interface KeysFile {
  parties: Record<Party, { bech32: string }>;
  subaddresses_used: { A: string; B: string; B_unknown_in_flow_c: string };
}

/** The commands of one reference flow, in wire order. */
export function flowSteps(flow: 'a' | 'b' | 'c'): FlowStep[] {
  return readFixtureLines<FlowLine>('flows.jsonl')
    .filter((line) => line.flow === flow)
    .sort((x, y) => x.step - y.step)
    .map((line) => ({
      flow: line.flow,
      step: line.step,
      from: line.from,
      to: line.to,
      payment: PaymentObject.parse(line.request_payload.command.payment),
    }));
}

/** The bech32 (zero subaddress) addresses of A and B, and the subaddresses the flows use. */
export function flowParties(): {
  address: Record<Party, string>;
  subaddress: Record<Party, string>;
  unknownSubaddress: string;
} {
  const keys = readFixtureJson<KeysFile>('keys.json');
  return {
    address: { A: keys.parties.A.bech32, B: keys.parties.B.bech32 },
    subaddress: { A: keys.subaddresses_used.A, B: keys.subaddresses_used.B },
    unknownSubaddress: keys.subaddresses_used.B_unknown_in_flow_c,
  };
}
