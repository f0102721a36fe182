CREATE TABLE `migrated_users` (
	`user_id` text PRIMARY KEY NOT NULL,
	`directory_id` text NOT NULL,
	`import_id` text NOT NULL,
	`email_lower` text NOT NULL,
	`external_id` text,
	`claimed_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `migrated_users_email_idx` ON `migrated_users` (`directory_id`,`email_lower`);--> statement-breakpoint
CREATE INDEX `migrated_users_external_idx` ON `migrated_users` (`directory_id`,`external_id`);--> statement-breakpoint
CREATE TABLE `user_import_chunks` (
	`import_id` text NOT NULL,
	`chunk` integer NOT NULL,
	`first_record` integer NOT NULL,
	`last_record` integer NOT NULL,
	`users` integer NOT NULL,
	`bytes` integer NOT NULL,
	`state` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`job_id` text,
	`inserted` integer,
	`updated` integer,
	`failed` integer,
	`errors` text,
	`submitted_at` integer,
	`completed_at` integer,
	PRIMARY KEY(`import_id`, `chunk`),
	FOREIGN KEY (`import_id`) REFERENCES `user_imports`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `user_imports` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`directory_id` text NOT NULL,
	`file_sha256` text NOT NULL,
	`file_name` text NOT NULL,
	`format` text NOT NULL,
	`upsert` integer NOT NULL,
	`connection` text NOT NULL,
	`state` text NOT NULL,
	`records` integer NOT NULL,
	`chunks` integer NOT NULL,
	`last_error` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`organization_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `user_imports_org_idx` ON `user_imports` (`organization_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `user_imports_file_idx` ON `user_imports` (`organization_id`,`file_sha256`);