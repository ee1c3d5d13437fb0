# Call 9: cuDNN packed (ragged) attention probe; packed vs unpacked large; XLA flag screening.
source bench/runs/setup.sh
python3 bench/probe_packed_attention.py --time 2>&1 | grep -E '^\{|Error|error' | head -40
$B --out $OUT/r9.jsonl --sizes large --batch 64 --steps 5 --variant unpacked --timeout 170 | tail -1
$B --out $OUT/r9.jsonl --sizes large --batch 64 --steps 5 --packed --variant packed_einsum --timeout 170 | tail -1
L6="--sizes large --batch 96 --steps 5 --set num_encoder_layers=6 --set num_decoder_layers=6 --timeout 100"
for f in "" "--xla_gpu_experimental_enable_triton_softmax_priority_fusion=true" "--xla_gpu_enable_cudnn_layer_norm=true" "--xla_gpu_enable_command_buffer="; do
  $B --out $OUT/r9.jsonl $L6 --xla-flags "--xla_gpu_enable_triton_gemm=false $f" --variant "l6 $f" | tail -1
done
