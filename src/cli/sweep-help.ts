// The sweep command's options for `vmemsim --help` (src/cli/sweep.ts implements them).
export const SWEEP_HELP = `Options of sweep (FILE: a scenario, or a sweep file with \`scenario\` and \`params\`):
  --param PATH=VALUES  a parameter and its values, repeatable: host.memory=[48GiB,64GiB],
                       Mem.IdleTax=[0,75], vms.web.memory=[4GiB,8GiB], seed=1..10
  --out DIR           the sweep's folder (default: sweep-NAME): sweep.json, one folder per point,
                      sweep.csv (or sweep-shard-I-of-N.csv)
  --jobs N            points run at once, each on its own worker thread (default: the CPU count)
  --shard I/N         run only the points whose index mod N is I-1 (batch job arrays)
  --merge [DIR ...]   join the shards' points into --out DIR (copying them from the DIRs) and
                      write sweep.csv
  --duration T        override every point's simulated duration
  --check             verify the conservation invariants every tick
  --force             run again points whose results are already in DIR
  --quiet             no progress
`;
