#!/usr/bin/env node
// `npm test`: the type check, Biome and then the vitest specs run beside the node:test run (they use a core
// the tests leave idle while they wait on timers, locks and child processes). Their output is printed after
// the node:test run's; the exit code is the first failure's, and every part runs to its end.
import { spawn } from 'node:child_process'

const bin = (name) => `node_modules/.bin/${name}`

/** Runs a command; `buffered` keeps its output until it ends, so it does not split the tests' lines. */
function run(label, command, args, { buffered }) {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { stdio: buffered ? ['ignore', 'pipe', 'pipe'] : 'inherit' })
    const chunks = []
    if (buffered) {
      child.stdout.on('data', (c) => chunks.push(c))
      child.stderr.on('data', (c) => chunks.push(c))
    }
    child.on('error', (error) => {
      chunks.push(Buffer.from(`${label}: ${error.message}\n`))
      resolveRun({ label, code: 1, output: Buffer.concat(chunks).toString() })
    })
    child.on('close', (code, signal) => {
      resolveRun({ label, code: code ?? (signal ? 1 : 0), output: Buffer.concat(chunks).toString() })
    })
  })
}

const report = ({ label, code, output }) => {
  if (output.trim()) process.stdout.write(`\n> ${label}\n${output}`)
  console.log(`${label}: ${code === 0 ? 'passed' : `failed (exit ${code})`}`)
  return code
}

const beside = (async () => {
  const checks = await Promise.all([
    run('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], { buffered: true }),
    run('lint', bin('biome'), ['check', '.'], { buffered: true }),
  ])
  return [...checks, await run('vitest', bin('vitest'), ['run'], { buffered: true })]
})()
const nodeTests = await run('node:test', process.execPath, ['scripts/run-tests.mjs'], { buffered: false })
const codes = [...(await beside).map(report), report({ ...nodeTests, output: '' })]
process.exit(codes.find((c) => c !== 0) ?? 0)
