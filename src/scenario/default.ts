// The built-in default scenario, as YAML text (browser-safe: no file access needed).
// scenarios/default.yaml is an identical copy for users to read and edit; a test keeps them equal.
export const DEFAULT_SCENARIO_YAML = `# vmemsim built-in default scenario: a 64 GiB ESXi host overcommitted 1.5x (96 GiB of configured
# guest memory) by a dozen mixed Linux and Windows VMs, over 2 simulated hours.
# Page touches per second in all: 25,300 at the start, 29,300 once \`report\` is on (30m), 31,300
# from 1h (sized so the whole run takes under 10 s on a 2-core machine). Format: docs/scenarios.md.
name: default
seed: 1
duration: 2h
tick: 1s
sampleEvery: 20s

host:
  memory: 64GiB
  cpu: { cores: 16, ghz: 2.6 }
  policy: esxi
  # hypervisorReserve defaults to 1 GiB + 1 % of host memory

vms:
  # 4 Linux web servers, clones of one Ubuntu image; load rises at the 1h mark.
  - name: web
    count: 4
    memory: 8GiB
    image: ubuntu-22.04
    guest: { os: linux }
    workload:
      - { at: 0s, active: 3GiB, touchRate: 2500/s, pattern: zipf(0.9), writeRatio: 0.2 }
      - { at: 1h, active: 4GiB, touchRate: 3000/s }

  # 2 Linux databases: large buffer pools with a hot core, write-heavy.
  - name: db
    count: 2
    memory: 16GiB
    reservation: 4GiB
    shares: high
    image: ubuntu-22.04
    guest: { os: linux }
    content: { zero: 0.02, image: 0.05, duplicate: 0.01 }
    workload:
      - { at: 0s, active: 9GiB, touchRate: 4000/s, pattern: "hotcold(0.2,0.8)", writeRatio: 0.4 }

  # 4 Windows desktops, clones of one Windows Server 2022 image.
  - name: desk
    count: 4
    memory: 4GiB
    image: win2022
    guest: { os: windows }
    workload:
      - { at: 0s, active: 1.2GiB, touchRate: 1200/s, pattern: zipf(1.1), writeRatio: 0.3 }

  # A Windows application server.
  - name: app
    memory: 8GiB
    image: win2022
    guest: { os: windows }
    workload:
      - { at: 0s, active: 3GiB, touchRate: 2500/s, pattern: uniform, writeRatio: 0.25 }

  # A Windows reporting server, powered on at 30m by an event.
  - name: report
    memory: 8GiB
    powerOn: off
    image: win2022
    guest: { os: windows }
    workload:
      - { at: 0s, active: 4GiB, touchRate: 4000/s, pattern: "hotcold(0.1,0.6)", writeRatio: 0.1 }

events:
  - { at: 30m, powerOn: report }
  # From 1h, no idle memory tax: idle memory is no longer preferred for reclamation.
  - { at: 1h, set: { Mem.IdleTax: 0 } }
`;
