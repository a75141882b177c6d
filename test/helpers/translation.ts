// What the translation tests share: the thrown TranslationError, checked for its class.
import { expect } from "vitest";
import { TranslationError } from "../../src/driver/translation-error.js";

export function translationError(fn: () => unknown): TranslationError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected a TranslationError").toBeInstanceOf(TranslationError);
  return caught as TranslationError;
}
