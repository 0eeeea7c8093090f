// Steps with cache keys, then each step run or replayed from its record. A
// key names the whole chain before it, so every record can be read at once.
import type { Span, SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Store } from "../cache/store.ts";
import { Tree, type TreeChange } from "../image/tree.ts";
import type { BuildContext } from "../instructions/context.ts";
import { specFor, type Instruction } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { firstKey, stepKey } from "./keys.ts";
import { clockMs } from "../core/clock.ts";
import type { BuildEvent, StepRecord } from "./types.ts";

export interface StepCacheRecord {
  changes: TreeChange[];
  /** What the step warned about and noted when it ran: a replay repeats them. */
  warnings: Array<Omit<Diagnostic, "source">>;
  notes: string[];
}

export interface Plan {
  keys: string[];
  cacheable: boolean[];
  /** The last step's key: what the finished tree is, before the epoch. */
  finalKey: string;
}

/** Every step's key, from the recipe and the digests of what each step reads. */
export async function planSteps(
  recipe: Recipe,
  context: BuildContext,
  fail: (error: unknown, span: Span) => never,
): Promise<Plan> {
  const keys: string[] = [];
  const cacheable: boolean[] = [];
  let key = firstKey(context.platform.name);
  for (const instruction of recipe.instructions) {
    const spec = specFor(instruction);
    cacheable.push(spec.cacheable?.(instruction, context) ?? true);
    let inputs: string[] = [];
    try {
      inputs = (await spec.keyInputs?.(instruction, context)) ?? [];
    } catch (error) {
      fail(error, instruction.span);
    }
    key = stepKey(key, instruction, inputs);
    keys.push(key);
  }
  return { keys, cacheable, finalKey: key };
}

export interface StepsResult {
  /** Which line last wrote each path: where image checks point. */
  origins: Map<string, Span>;
  /** The MODE word of the line that last wrote a path, where that line had one (NIFTY233 points there). */
  modeSpans: Map<string, Span>;
  /** Paths last written by base-layer instructions (fetched binaries and their links). */
  basePaths: Set<string>;
  /** Blobs the tree uses. */
  used: Set<string>;
}

export interface RunInput {
  recipe: Recipe;
  source: SourceFile;
  store: Store;
  tree: Tree;
  plan: Plan;
  context: BuildContext;
  fail: (error: unknown, span: Span) => never;
  /** A step done: whether from its record, its time, and the notes it gave (said again when replayed). */
  record: (index: number, reused: boolean, ms: number, notes: readonly string[]) => void;
  /** The build's warnings, which steps add to; and the running step's notes. */
  warnings: Diagnostic[];
  stepNotes: string[];
  emit: (event: BuildEvent) => void;
  /** The step records, when the caller has read them already. */
  records?: Array<StepCacheRecord | undefined>;
}

/** Each step's record (undefined: none, or the step is never cached), all read at once. */
export function readStepRecords(store: Store, plan: Plan): Promise<Array<StepCacheRecord | undefined>> {
  return Promise.all(
    plan.keys.map((k, i) => (plan.cacheable[i] ? store.readRecord<StepCacheRecord>("steps", k) : undefined)),
  );
}

/**
 * Run each step, or replay its recorded changes when the record and its blobs are there. A step's
 * record is written while the next steps run (its fsync would otherwise hold each step up) and all
 * are written before this returns, a failed build's too, so the next build replays what did run.
 */
export async function runSteps(input: RunInput): Promise<StepsResult> {
  const writes: Array<Promise<void>> = [];
  try {
    const result = await runEach(input, (key, record) => {
      const write = input.store.writeRecord("steps", key, record);
      // Awaited below; until then a failed write must not count as unhandled.
      write.catch(() => {});
      writes.push(write);
    });
    await Promise.all(writes);
    return result;
  } catch (error) {
    await Promise.allSettled(writes);
    throw error;
  }
}

async function runEach(
  { recipe, source, store, tree, plan, context, fail, record, warnings, stepNotes, emit, ...read }: RunInput,
  save: (key: string, record: StepCacheRecord) => void,
): Promise<StepsResult> {
  const records = read.records ?? (await readStepRecords(store, plan));
  const result: StepsResult = {
    origins: new Map(),
    modeSpans: new Map(),
    basePaths: new Set(),
    used: new Set(),
  };
  for (const [index, instruction] of recipe.instructions.entries()) {
    const started = clockMs();
    const cached = records[index];
    let reused = false;
    let changes: TreeChange[];
    let said: Pick<StepCacheRecord, "warnings" | "notes">;
    if (cached !== undefined && (await blobsPresent(store, cached.changes))) {
      tree.apply(cached.changes);
      changes = tree.takeChanges();
      reused = true;
      said = cached;
      for (const w of cached.warnings) warnings.push({ ...w, source });
    } else {
      const before = warnings.length;
      stepNotes.length = 0;
      try {
        await specFor(instruction).apply?.(instruction, context);
      } catch (error) {
        fail(error, instruction.span);
      }
      changes = tree.takeChanges();
      said = { warnings: warnings.slice(before).map(({ source: _, ...w }) => w), notes: [...stepNotes] };
      if (plan.cacheable[index]) save(plan.keys[index]!, { changes, ...said });
    }
    for (const message of said.notes) emit({ type: "note", message });
    track(result, instruction, changes);
    record(index, reused, Math.round(clockMs() - started), said.notes);
  }
  return result;
}

function track(result: StepsResult, instruction: Instruction, changes: readonly TreeChange[]): void {
  const base = specFor(instruction).layer === "base";
  for (const [path, node] of changes) {
    result.origins.set(path, instruction.span);
    if (instruction.modeSpan !== undefined) result.modeSpans.set(path, instruction.modeSpan);
    else result.modeSpans.delete(path);
    if (base) result.basePaths.add(path);
    else result.basePaths.delete(path);
    if (node.type === "file" && node.content.inline === undefined) result.used.add(node.content.digest);
  }
}

async function blobsPresent(store: Store, changes: readonly TreeChange[]): Promise<boolean> {
  const blobs = changes.flatMap(([, node]) =>
    node.type === "file" && node.content.inline === undefined ? [node.content] : [],
  );
  return store.hasAll(blobs);
}

export type { BuildEvent, StepRecord };
