# Call 55 (session 6): fine-tuning on unpacked rows (`pack=False`: dropout 0.05, no segment ids),
# where the encoder runs on the Pallas kernel too: kv lengths (today) vs all-ones segment ids
# (`kernel_padding_as_segments`, before row 63), large b64, in one call.
source bench/runs/setup.sh
$B --out $OUT/r55.jsonl --sizes large --batch 64 --steps 5 --set dropout_rate=0.05 --variant unpacked_dropout_lengths --timeout 280 | tail -1
$B --out $OUT/r55.jsonl --sizes large --batch 64 --steps 5 --set dropout_rate=0.05 --variant unpacked_dropout_segments --patch bench.variants:kernel_padding_as_segments --timeout 280 | tail -1
