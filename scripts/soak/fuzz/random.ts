// The fuzzer's randomness: seeded (--seed), so a failing run can be repeated.
import { mulberry32 } from "../random.js";

let rand = mulberry32(1);
export const seed = (n: number) => void (rand = mulberry32(n));
export const random = () => rand();
export const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
/** One element of a non-empty list. */
export const pick = <T>(arr: readonly T[]): T => arr[Math.floor(rand() * arr.length)] as T;
export const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(0, 15)]).join("");
export function randomBuffer(n: number) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(0, 255);
  return b;
}
