#include "losses/contrastive_loss.h"

#include "common/error.h"
#include "losses/infonce.h"
#include "losses/loss_checks.h"
#include "losses/siglip.h"

namespace duet::losses {

ContrastiveBatch ContrastiveBatch::single_process(const torch::Tensor& image,
                                                  const torch::Tensor& text) {
  return ContrastiveBatch{image, text, image, text, 0, true};
}

torch::Tensor contrastive_loss(const ContrastiveBatch& batch, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, const config::LossConfig& config) {
  if (config.type == config::LossType::kClip) {
    DUET_CHECK(!logit_bias.defined(),
               "contrastive_loss: loss.type 'clip' takes no logit_bias (softmax ignores a shared "
               "bias), got {}; use loss.type 'siglip' or turn model.logit_bias off",
               describe(logit_bias));
    if (batch.one_process) {
      return infonce_loss(batch.image_local, batch.text_local, logit_scale, config);
    }
    return infonce_loss(batch.image_local, batch.text_local, batch.image_all, batch.text_all,
                        batch.offset, logit_scale, config);
  }
  DUET_CHECK(logit_bias.defined(),
             "contrastive_loss: loss.type 'siglip' needs logit_bias (model.logit_bias: true)");
  if (batch.one_process) {
    return siglip_loss(batch.image_local, batch.text_local, logit_scale, logit_bias, config);
  }
  return siglip_loss(batch.image_local, batch.text_all, batch.offset, logit_scale, logit_bias,
                     config);
}

}  // namespace duet::losses
