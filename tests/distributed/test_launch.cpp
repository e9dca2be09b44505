// Rank discovery from launcher variables and Slurm hostlists: every launcher, the order between
// them, and the errors for partial or invalid variables.
#include <string>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "distributed/launch.h"

using duet::Error;
using duet::ErrorKind;
using duet::distributed::discover_launch;
using duet::distributed::Environment;
using duet::distributed::expand_hostlist;
using duet::distributed::LaunchInfo;

namespace {

// The usage Error discover_launch throws for `env` (fails the test when none is thrown).
std::string launch_error(const Environment& env) {
  try {
    discover_launch(env);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUsage);
    return e.what();
  }
  FAIL("no error for this environment");
  return "";
}

std::string hostlist_error(const std::string& list) {
  try {
    expand_hostlist(list);
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("no error for hostlist " << list);
  return "";
}

using Hosts = std::vector<std::string>;

}  // namespace

TEST_CASE("no launcher variables: one process") {
  const LaunchInfo info = discover_launch({{"HOME", "/root"}, {"MASTER_PORT", "1234"}});
  CHECK(info.rank == 0);
  CHECK(info.world_size == 1);
  CHECK(info.local_rank == 0);
  CHECK(info.launcher == "single");
  CHECK_FALSE(info.is_distributed());
}

TEST_CASE("torchrun variables") {
  const LaunchInfo info = discover_launch({{"RANK", "5"},
                                           {"WORLD_SIZE", "8"},
                                           {"LOCAL_RANK", "1"},
                                           {"MASTER_ADDR", "node01"},
                                           {"MASTER_PORT", "29500"},
                                           {"GLOO_SOCKET_IFNAME", "eth1"}});
  CHECK(info.rank == 5);
  CHECK(info.world_size == 8);
  CHECK(info.local_rank == 1);
  CHECK(info.master_addr == "node01");
  CHECK(info.master_port == 29500);
  CHECK(info.launcher == "torchrun");
  CHECK(info.gloo_interface == "eth1");
  CHECK(info.describe() == "rank 5 of 8 (local 1, torchrun, rendezvous node01:29500)");
}

TEST_CASE("ranks on a node: LOCAL_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_SIZE, else 1") {
  CHECK(discover_launch({}).local_world_size == 1);
  CHECK(discover_launch({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_WORLD_SIZE", "4"}})
            .local_world_size == 4);
  CHECK(discover_launch({{"OMPI_COMM_WORLD_RANK", "0"},
                         {"OMPI_COMM_WORLD_SIZE", "1"},
                         {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}})
            .local_world_size == 2);
  CHECK_THROWS_AS(discover_launch({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_WORLD_SIZE", "x"}}),
                  Error);
}

TEST_CASE("torchrun: LOCAL_RANK defaults to RANK, one rank needs no address") {
  const LaunchInfo two = discover_launch(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1"}});
  CHECK(two.local_rank == 1);
  const LaunchInfo one = discover_launch({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  CHECK(one.world_size == 1);
  CHECK(one.launcher == "torchrun");
  CHECK(one.master_addr.empty());
}

TEST_CASE("torchrun variables win over Slurm and Open MPI") {
  const LaunchInfo info = discover_launch({{"RANK", "0"},
                                           {"WORLD_SIZE", "1"},
                                           {"SLURM_PROCID", "3"},
                                           {"SLURM_NTASKS", "4"},
                                           {"OMPI_COMM_WORLD_RANK", "2"},
                                           {"OMPI_COMM_WORLD_SIZE", "4"}});
  CHECK(info.launcher == "torchrun");
  CHECK(info.rank == 0);
}

TEST_CASE("torchrun: partial and invalid variables are usage errors naming them") {
  CHECK_THAT(launch_error({{"RANK", "0"}}),
             Catch::Contains("WORLD_SIZE is not set") && Catch::Contains("torchrun"));
  CHECK_THAT(launch_error({{"WORLD_SIZE", "2"}}), Catch::Contains("RANK is not set"));
  CHECK_THAT(launch_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}),
             Catch::Contains("RANK=2 must be less than WORLD_SIZE=2"));
  CHECK_THAT(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "0"}}),
             Catch::Contains("WORLD_SIZE=0 must be at least 1"));
  CHECK_THAT(launch_error({{"RANK", "one"}, {"WORLD_SIZE", "2"}}),
             Catch::Contains("RANK='one' is not a non-negative integer"));
  CHECK_THAT(launch_error({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}),
             Catch::Contains("RANK='-1' is not a non-negative integer"));
  CHECK_THAT(launch_error({{"RANK", "1 "}, {"WORLD_SIZE", "2"}}),
             Catch::Contains("RANK='1 ' is not"));
  CHECK_THAT(launch_error({{"RANK", ""}, {"WORLD_SIZE", "2"}}), Catch::Contains("RANK=''"));
  CHECK_THAT(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "99999999999"}}),
             Catch::Contains("too large"));
  CHECK_THAT(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "5"}}),
             Catch::Contains("LOCAL_RANK=5 must be less than WORLD_SIZE=2"));
  CHECK_THAT(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}),
             Catch::Contains("MASTER_ADDR is not set"));
  CHECK_THAT(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}),
             Catch::Contains("MASTER_PORT is not set"));
  CHECK_THAT(
      launch_error(
          {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}),
      Catch::Contains("MASTER_PORT='70000' is not a TCP port"));
  CHECK_THAT(launch_error(
                 {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "0"}}),
             Catch::Contains("MASTER_PORT='0'"));
  CHECK_THAT(
      launch_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", ""}, {"MASTER_PORT", "1"}}),
      Catch::Contains("MASTER_ADDR is empty"));
}

TEST_CASE("Slurm variables: first host of the step's nodelist, port from the job id") {
  const LaunchInfo info = discover_launch({{"SLURM_PROCID", "6"},
                                           {"SLURM_NTASKS", "8"},
                                           {"SLURM_LOCALID", "2"},
                                           {"SLURM_JOB_NODELIST", "gpu[07-08],login1"},
                                           {"SLURM_STEP_NODELIST", "gpu[07-08]"},
                                           {"SLURM_JOB_ID", "123456"}});
  CHECK(info.launcher == "slurm");
  CHECK(info.rank == 6);
  CHECK(info.world_size == 8);
  CHECK(info.local_rank == 2);
  CHECK(info.master_addr == "gpu07");
  CHECK(info.master_port == 20000 + 123456 % 20000);
  CHECK(info.master_port == duet::distributed::slurm_default_port(123456));
}

TEST_CASE("Slurm: MASTER_ADDR / MASTER_PORT override, job nodelist and SLURM_NPROCS fallbacks") {
  const LaunchInfo info = discover_launch({{"SLURM_PROCID", "0"},
                                           {"SLURM_NPROCS", "2"},
                                           {"SLURM_NODELIST", "a[1-2]"},
                                           {"SLURM_JOB_ID", "7"},
                                           {"MASTER_ADDR", "10.0.0.1"},
                                           {"MASTER_PORT", "31000"}});
  CHECK(info.world_size == 2);
  CHECK(info.master_addr == "10.0.0.1");
  CHECK(info.master_port == 31000);
  CHECK(info.local_rank == 0);
  const LaunchInfo from_job = discover_launch({{"SLURM_PROCID", "1"},
                                               {"SLURM_NTASKS", "2"},
                                               {"SLURM_JOB_NODELIST", "node[01-04,07],gpu5"},
                                               {"SLURM_JOB_ID", "7"}});
  CHECK(from_job.master_addr == "node01");
  CHECK(from_job.master_port == 20007);
}

TEST_CASE("Slurm: partial and invalid variables are usage errors") {
  CHECK_THAT(launch_error({{"SLURM_PROCID", "0"}}), Catch::Contains("SLURM_NTASKS is not"));
  CHECK_THAT(launch_error({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}}),
             Catch::Contains("SLURM_PROCID=4 must be less than SLURM_NTASKS=4"));
  CHECK_THAT(launch_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_ID", "1"}}),
             Catch::Contains("SLURM_JOB_NODELIST is set"));
  CHECK_THAT(launch_error({{"SLURM_PROCID", "0"},
                           {"SLURM_NTASKS", "2"},
                           {"SLURM_JOB_NODELIST", "n[1-2"},
                           {"SLURM_JOB_ID", "1"}}),
             Catch::Contains("SLURM_JOB_NODELIST='n[1-2'") && Catch::Contains("without ']'"));
  CHECK_THAT(
      launch_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "n1"}}),
      Catch::Contains("neither MASTER_PORT nor SLURM_JOB_ID"));
  CHECK_THAT(launch_error({{"SLURM_PROCID", "0"},
                           {"SLURM_NTASKS", "2"},
                           {"SLURM_JOB_NODELIST", "n1"},
                           {"SLURM_JOB_ID", "x"}}),
             Catch::Contains("SLURM_JOB_ID='x'"));
  // One task needs no rendezvous.
  CHECK(discover_launch({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).world_size == 1);
}

TEST_CASE("Open MPI variables need MASTER_ADDR and MASTER_PORT") {
  const LaunchInfo info = discover_launch({{"OMPI_COMM_WORLD_RANK", "3"},
                                           {"OMPI_COMM_WORLD_SIZE", "4"},
                                           {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                           {"MASTER_ADDR", "head"},
                                           {"MASTER_PORT", "29400"}});
  CHECK(info.launcher == "openmpi");
  CHECK(info.rank == 3);
  CHECK(info.world_size == 4);
  CHECK(info.local_rank == 1);
  CHECK(info.master_addr == "head");
  CHECK_THAT(launch_error({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}}),
             Catch::Contains("MASTER_ADDR is not set") && Catch::Contains("-x MASTER_ADDR"));
  CHECK_THAT(launch_error({{"OMPI_COMM_WORLD_SIZE", "2"}}),
             Catch::Contains("OMPI_COMM_WORLD_RANK is not set"));
  // Slurm comes before Open MPI (mpirun inside an allocation sets both).
  CHECK(discover_launch({{"SLURM_PROCID", "0"},
                         {"SLURM_NTASKS", "1"},
                         {"OMPI_COMM_WORLD_RANK", "0"},
                         {"OMPI_COMM_WORLD_SIZE", "1"}})
            .launcher == "slurm");
}

TEST_CASE("hostlists expand in order, keeping zero padding") {
  CHECK(expand_hostlist("node1") == Hosts{"node1"});
  CHECK(expand_hostlist("node[01-04,07],gpu5") ==
        Hosts{"node01", "node02", "node03", "node04", "node07", "gpu5"});
  CHECK(expand_hostlist("n[8-11]") == Hosts{"n8", "n9", "n10", "n11"});
  CHECK(expand_hostlist("n[098-101]") == Hosts{"n098", "n099", "n100", "n101"});
  CHECK(expand_hostlist("rack[1-2]-n[1,3]") ==
        Hosts{"rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"});
  CHECK(expand_hostlist("a[1],b") == Hosts{"a1", "b"});
  CHECK(expand_hostlist("gpu-a100-[3-4].cluster") ==
        Hosts{"gpu-a100-3.cluster", "gpu-a100-4.cluster"});
}

TEST_CASE("malformed hostlists are errors") {
  CHECK_THAT(hostlist_error(""), Catch::Contains("empty entry"));
  CHECK_THAT(hostlist_error("a,,b"), Catch::Contains("empty entry"));
  CHECK_THAT(hostlist_error("n[1-3"), Catch::Contains("without ']'"));
  CHECK_THAT(hostlist_error("n1-3]"), Catch::Contains("unbalanced ']'"));
  CHECK_THAT(hostlist_error("n[3-1]"), Catch::Contains("runs backwards"));
  CHECK_THAT(hostlist_error("n[a-b]"), Catch::Contains("'a-b' is not a number"));
  CHECK_THAT(hostlist_error("n[]"), Catch::Contains("is not a number"));
  CHECK_THAT(hostlist_error("n[1-9999999]"), Catch::Contains("implausibly large"));
  CHECK_THAT(hostlist_error("n[[1]]"), Catch::Contains("nested"));
}

TEST_CASE("the CUDA device of a rank: its local rank, or the only visible one") {
  LaunchInfo info;
  info.world_size = 16;
  info.rank = 11;
  info.local_rank = 3;
  CHECK(duet::distributed::cuda_device_index(info, 8) == 3);
  CHECK(duet::distributed::cuda_device_index(info, 1) == 0);
  CHECK_THROWS_WITH(duet::distributed::cuda_device_index(info, 2),
                    Catch::Contains("local rank 3 but only 2 CUDA devices are visible"));
  CHECK_THROWS_WITH(duet::distributed::cuda_device_index(info, 0),
                    Catch::Contains("no CUDA device is visible"));
}
