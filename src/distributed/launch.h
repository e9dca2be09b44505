#pragma once
// Where this process sits in a multi-process job, read from the launcher's environment
// variables. The first launcher whose variables are present wins:
//   1. torchrun style: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//      (also what scripts/launch_local.sh sets)
//   2. Slurm (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the rendezvous host is
//      MASTER_ADDR or else the first host of SLURM_STEP_NODELIST / SLURM_JOB_NODELIST /
//      SLURM_NODELIST (hostlist syntax, `node[01-04,07],gpu5`); the port is MASTER_PORT or else
//      derived from SLURM_JOB_ID so that concurrent jobs on a node do not collide
//   3. Open MPI (mpirun): OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//      OMPI_COMM_WORLD_LOCAL_RANK; MPI has no rendezvous address, so MASTER_ADDR and
//      MASTER_PORT are required when there is more than one rank
//   4. none of them: a single process
// A launcher whose variables are partly set, or set to values that do not parse or do not fit
// together (RANK >= WORLD_SIZE, port 0, ...), is a usage Error naming the variable and value:
// guessing would start a job whose ranks disagree and then hang.
// Torch-free, so it is unit-tested with plain maps.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet::distributed {

using Environment = std::map<std::string, std::string>;

struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // selects the GPU on a multi-GPU node
  // Ranks sharing this node's CPUs, when the launcher says (torchrun's LOCAL_WORLD_SIZE, Open
  // MPI's OMPI_COMM_WORLD_LOCAL_SIZE); 1 otherwise, as under Slurm, which binds each task to
  // its own CPUs. Divides the cores among the ranks' data loaders.
  int local_world_size = 1;
  std::string master_addr;          // host of rank 0's rendezvous store (empty for one process)
  int master_port = 0;              // its TCP port (0 for one process)
  std::string launcher = "single";  // torchrun, slurm, openmpi or single: named in messages
  std::string gloo_interface;       // GLOO_SOCKET_IFNAME: network interface Gloo binds to

  bool is_distributed() const { return world_size > 1; }
  // "rank 1 of 4 (local 1, torchrun, rendezvous 127.0.0.1:29500)"
  std::string describe() const;
};

// This process's environment as a map.
Environment current_environment();

// Rank, world size and rendezvous address from `env`, as described above.
LaunchInfo discover_launch(const Environment& env);

// The CUDA device index for this rank given how many devices it can see: LOCAL_RANK when every
// GPU of the node is visible, 0 when the launcher gave each rank exactly one (srun
// --gpus-per-task=1, CUDA_VISIBLE_DEVICES per rank). A usage Error when LOCAL_RANK is beyond the
// visible devices, or none is visible.
int cuda_device_index(const LaunchInfo& launch, int visible_devices);

// The port a Slurm job uses when MASTER_PORT is not set: 20000 + SLURM_JOB_ID mod 20000.
int slurm_default_port(int64_t job_id);

// Expands a Slurm hostlist ("node[01-04,07],gpu5", "rack[1-2]-n[1,3]") into host names in
// order, keeping zero padding. Throws a usage Error for malformed lists.
std::vector<std::string> expand_hostlist(const std::string& hostlist);

}  // namespace duet::distributed
