// The order the cases are sent in: weighted at random, with the big and slow ones spread in.
import { random } from "./random.js";

// Relative frequency of each case; the 20 MB ones are a handful per run (see schedule()).
const WEIGHTS: Record<string, number> = {
  wrongType: 30,
  validShapeBadOptions: 6,
  genericWrongType: 2,
  unknownIds: 6,
  randomBody: 5,
  randomConnection: 4,
  truncatedJson: 5,
  deepNesting: 3,
  hugeString: 3,
  hugeKey: 1,
  manyKeys: 2,
  manyIssues: 2,
  wrongJsonType: 3,
  unknownPath: 4,
  otherMethod: 4,
  badMethod: 2,
  garbageLine: 2,
  badHeaders: 3,
  contentHeaders: 3,
  chunkedValid: 3,
  pipelined: 2,
  http10: 1,
  abortMidBody: 1,
  valid: 3,
};
const SLOW_CASES = ["slowHeaders", "slowBody", "slowChunked"];

/** The case names in send order: weighted at random, plus a few big and slow ones spread in. */
export function schedule(n: number): string[] {
  const names = Object.keys(WEIGHTS);
  const weight = (k: string) => WEIGHTS[k] ?? 0;
  const total = names.reduce((s, k) => s + weight(k), 0);
  const list: string[] = [];
  for (let i = 0; i < n; i++) {
    let r = random() * total;
    list.push(names.find((k) => (r -= weight(k)) < 0) ?? names[0] ?? "valid");
  }
  const bigs = Math.min(Math.max(2, Math.round(n / 2000)), 10);
  const slows = Math.min(Math.max(3, Math.round(n / 200)), 60);
  const spread = (name: string, count: number) => {
    for (let i = 0; i < count && list.length; i++) list[Math.floor(((i + 0.5) / count) * list.length)] = name;
  };
  spread("bigDeclared", bigs);
  for (let i = 0; i < bigs; i++) list[Math.floor(((i + 0.75) / bigs) * list.length) % list.length] = "bigChunked";
  for (let i = 0; i < slows; i++) list[Math.floor(((i + 0.25) / slows) * list.length) % list.length] = SLOW_CASES[i % SLOW_CASES.length] as string;
  if (list.length >= 20) for (const at of [0.1, 0.6]) list[Math.floor(at * list.length) + 1] = "slowPatient";
  return list.slice(0, n);
}
