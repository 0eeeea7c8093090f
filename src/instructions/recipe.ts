// A checked recipe: what the checker hands to the pipeline.
import type { Instruction } from "./index.ts";

export interface Recipe {
  /** The recipe's file name without .nifty: image, machine and unit name. */
  name: string;
  path: string;
  /** Absolute directory of the recipe (COPY sources are relative to it). */
  dir: string;
  instructions: Instruction[];
}
